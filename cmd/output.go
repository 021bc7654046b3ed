package cmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// One output vocabulary for every command that prints data: -o text (the
// default, for people), json or yaml (for scripts, with the same snake_case
// field names). A wrong value is refused before anything is read or dialled.

// checkDataOutput accepts the -o values of commands that print data.
func checkDataOutput(o string) error {
	switch o {
	case "", "text", "json", "yaml":
		return nil
	}
	return fmt.Errorf("-o %q: want text, json or yaml", o)
}

func printYAML(w io.Writer, v any) error {
	e := yaml.NewEncoder(w)
	e.SetIndent(2)
	if err := e.Encode(v); err != nil {
		return err
	}
	return e.Close()
}

// printData prints v as JSON or YAML, or calls text for -o text.
func printData(w io.Writer, output string, v any, text func() error) error {
	switch output {
	case "json":
		return printJSON(w, v)
	case "yaml":
		return printYAML(w, v)
	}
	return text()
}

// addOutput adds -o to c, with completion, checked before c runs.
func addOutput(c *cobra.Command, output *string) {
	c.Flags().StringVarP(output, "output", "o", "text", "output format: text, json or yaml")
	_ = c.RegisterFlagCompletionFunc("output", completeValues("text", "json", "yaml"))
	prev := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if err := checkDataOutput(*output); err != nil {
			return err
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}
