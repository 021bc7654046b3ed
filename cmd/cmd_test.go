package cmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// Every command an operator can run shows an example in its help.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" || strings.HasPrefix(sub.Name(), "__") {
				continue
			}
			if sub.Example == "" {
				t.Errorf("%s has no Example", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(NewRoot())
}

func TestRootHelpSaysWhatToRunFirst(t *testing.T) {
	out, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"In an emergency", "ezrestore status", "ezrestore plan", "rollback", "Rehearsal and development"} {
		if !strings.Contains(out, want) {
			t.Errorf("root help lacks %q", want)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "--version")
	if err != nil || !strings.HasPrefix(out, "ezrestore ") || !strings.Contains(out, "go1.") {
		t.Fatalf("--version = %q, %v", out, err)
	}
}

// A wrong -o is refused before anything is read or dialled: the cluster
// named here does not exist, and the error must be about -o.
func TestOutputCheckedFirst(t *testing.T) {
	for _, args := range [][]string{
		{"status", "no-such-cluster", "-o", "xml"},
		{"plan", "no-such-cluster", "-o", "table"},
		{"backup", "no-such-cluster", "-o", "csv"},
		{"snapshots", "no-such-cluster", "-o", "xml"},
		{"inventory", "no-such-cluster", "-o", "xml"},
	} {
		_, err := run(t, append([]string{"--base", t.TempDir()}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "want text, json or yaml") {
			t.Errorf("%v: got %v, want the -o refusal", args, err)
		}
	}
}

func TestCompletion(t *testing.T) {
	out, _ := run(t, "__complete", "restore", "--from-step", "")
	for _, want := range []string{"preflight", "push snapshot", "wait for etcd health"} {
		if !strings.Contains(out, want) {
			t.Errorf("--from-step completion lacks %q:\n%s", want, out)
		}
	}
	out, _ = run(t, "__complete", "status", "-o", "")
	if !strings.Contains(out, "json") || !strings.Contains(out, "yaml") {
		t.Errorf("-o completion:\n%s", out)
	}
}

// YAML output uses the JSON field names (snake_case, MarshalJSON's hex IDs).
func TestYAMLSpeaksJSONNames(t *testing.T) {
	var b bytes.Buffer
	v := struct {
		HashVerified bool   `json:"hash_verified"`
		Path         string `json:"path"`
		Items        []int  `json:"items"`
		Quoted       string `json:"quoted"`
	}{true, "/x/y.db", []int{1, 2}, "yes"}
	if err := printYAML(&b, v); err != nil {
		t.Fatal(err)
	}
	want := "hash_verified: true\npath: /x/y.db\nitems:\n  - 1\n  - 2\nquoted: \"yes\"\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
