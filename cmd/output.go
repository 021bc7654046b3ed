package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

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

// printYAML prints v with the same field names as JSON: v is written as
// JSON (its json tags and MarshalJSON methods decide the names), read back as
// a YAML document (JSON is YAML) and written in block style.
func printYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	blockStyle(&doc)
	e := yaml.NewEncoder(w)
	e.SetIndent(2)
	if err := e.Encode(&doc); err != nil {
		return err
	}
	return e.Close()
}

func blockStyle(n *yaml.Node) {
	switch {
	case n.Kind != yaml.ScalarNode:
		n.Style = 0
	case n.Style == yaml.DoubleQuotedStyle && !ambiguous(n.Value):
		n.Style = 0 // the encoder quotes what YAML 1.2 would misread
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
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

// ambiguous strings read as something else to a YAML 1.1 reader (Ansible's
// PyYAML among them): they stay quoted.
func ambiguous(v string) bool {
	switch strings.ToLower(v) {
	case "", "~", "null", "y", "n", "yes", "no", "on", "off", "true", "false":
		return true
	}
	_, err := strconv.ParseFloat(strings.ReplaceAll(v, "_", ""), 64)
	return err == nil
}
