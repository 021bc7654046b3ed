package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ezrestore/ezrestore/internal/shellwords"
	"gopkg.in/yaml.v3"
)

// ExtraVars are ansible-playbook's -e (--extra-vars) arguments, read in the
// order given. Each argument is a layer of variables that wins over
// everything in the inventory and over the arguments before it, as in
// Ansible. The zero value is no extra vars.
type ExtraVars struct {
	layers []extraLayer
}

type extraLayer struct {
	arg  string // as given, for messages
	file string // the file read, for @file (and config.yml)
	vars varMap
}

// Args are the arguments as given, in order.
func (e ExtraVars) Args() []string {
	out := make([]string, 0, len(e.layers))
	for _, l := range e.layers {
		out = append(out, l.arg)
	}
	return out
}

// Files are the files read for @file arguments, in order.
func (e ExtraVars) Files() []string {
	var out []string
	for _, l := range e.layers {
		if l.file != "" {
			out = append(out, l.file)
		}
	}
	return out
}

// ParseExtraVars reads -e arguments the way ansible-playbook does:
//
//	@file.yml            a YAML or JSON file holding a map of variables
//	{"k": "v"}, {k: v}   inline JSON or YAML (an argument starting with { or [)
//	k1=v1 k2='v 2'       key=value pairs, split on spaces; quotes group, and
//	                     {{ ... }} stays one word
//
// An empty argument is ignored. A path without '@' is refused, as Ansible
// refuses it, because it would otherwise be read as key=value. Files are
// read now, so a bad -e fails before anything connects; every error names
// the argument.
func ParseExtraVars(args []string) (ExtraVars, error) {
	var e ExtraVars
	for _, arg := range args {
		l, ok, err := parseExtraArg(arg)
		if err != nil {
			return ExtraVars{}, err
		}
		if ok {
			e.layers = append(e.layers, l)
		}
	}
	return e, nil
}

func parseExtraArg(arg string) (extraLayer, bool, error) {
	label := extraLabel(arg)
	l := extraLayer{arg: arg}
	switch {
	case strings.TrimSpace(arg) == "":
		return l, false, nil
	case arg[0] == '@':
		if arg == "@" {
			return l, false, fmt.Errorf("%s: no file name after @", label)
		}
		m, err := readExtraFile(arg[1:])
		if err != nil {
			return l, false, fmt.Errorf("%s: %w", label, err)
		}
		l.file, l.vars = arg[1:], m
	case arg[0] == '/' || arg[0] == '.':
		return l, false, fmt.Errorf("%s: to read variables from a file, write -e @%s (Ansible needs the @ too)", label, arg)
	case arg[0] == '{' || arg[0] == '[':
		root, err := parseYAMLDoc(label, []byte(arg))
		if err != nil {
			var ie *Error
			if errors.As(err, &ie) {
				ie.Line = 0 // one argument: naming it is enough
			}
			return l, false, err
		}
		if root == nil || root.Kind != yaml.MappingNode {
			what := "nothing"
			if root != nil {
				what = kindName(root)
			}
			return l, false, fmt.Errorf("%s: extra vars must be a map like {\"name\": \"value\"}, got %s", label, what)
		}
		m, err := readVarMap(label, root, label)
		if err != nil {
			return l, false, err
		}
		// One argument, no lines: name the argument only.
		for k, v := range m {
			v.pos = Pos{File: label}
			m[k] = v
		}
		l.vars = m
	default:
		words, err := shellwords.KeyValue.Split(arg)
		if err != nil {
			return l, false, fmt.Errorf("%s: %v", label, err)
		}
		l.vars = varMap{}
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok || k == "" {
				return l, false, fmt.Errorf("%s: %q is not key=value (use -e @file.yml for a file, or JSON like -e '{\"k\": \"v\"}')", label, w)
			}
			if strings.ContainsAny(k, "{}'\" \t") {
				return l, false, fmt.Errorf("%s: %q is not a variable name", label, k)
			}
			l.vars.set(k, v, Pos{File: label})
		}
	}
	return l, true, nil
}

// readExtraFile reads an extra-vars file: a YAML or JSON map of variables.
func readExtraFile(path string) (varMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("extra vars: %w", err)
	}
	if isVaultFile(b) {
		return nil, &Error{File: path, Line: 1, Kind: ErrBadVar,
			Msg: "encrypted with ansible-vault, and ezrestore has no vault password: decrypt it into a file only you can read (ansible-vault view), or pass the variables ezrestore needs with -e KEY=VALUE"}
	}
	return loadVarsFile(path, b)
}

func isVaultFile(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(b), []byte("$ANSIBLE_VAULT;"))
}

// extraLabel names an argument in messages, as it would be typed.
func extraLabel(arg string) string {
	const max = 60
	shown := arg
	if len(shown) > max {
		shown = shown[:max] + "..."
	}
	if shown != "" && !strings.ContainsAny(shown, " \t\n'\"{}[]$`\\*?;&|<>()#") {
		return "-e " + shown
	}
	return "-e '" + strings.ReplaceAll(shown, "'", `'\''`) + "'"
}

// extraFromFiles is the old form of -e: file names, a leading '@' optional.
func extraFromFiles(files []string) (ExtraVars, error) {
	var e ExtraVars
	for _, f := range files {
		f = strings.TrimPrefix(f, "@")
		m, err := readExtraFile(f)
		if err != nil {
			return ExtraVars{}, err
		}
		e.layers = append(e.layers, extraLayer{arg: "@" + f, file: f, vars: m})
	}
	return e, nil
}
