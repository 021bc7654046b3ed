package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Ansible YAML inventory, as kubespray writes inventory/<name>/hosts.yaml:
//
//	all:
//	  hosts:    {node1: {ansible_host: 10.0.0.1}}
//	  vars:     {...}
//	  children:
//	    kube_control_plane: {hosts: {node1:}}
//	    k8s_cluster: {children: {kube_control_plane:, kube_node:}}
//
// Top-level keys other than all are groups too. JSON in the same shape works.

// parseYAMLInventory parses a YAML (or JSON) inventory into s.
func parseYAMLInventory(s *source, data []byte) error {
	root, err := parseYAMLDoc(s.file, data)
	if err != nil {
		return err
	}
	if root == nil {
		return errAt(Pos{File: s.file}, ErrSyntax, "empty YAML inventory")
	}
	if root.Kind != yaml.MappingNode {
		return errAt(s.pos(root), ErrSyntax, "a YAML inventory must be a map of groups, got %s", kindName(root))
	}
	return eachPair(s.file, root, func(k, v *yaml.Node) error {
		return s.yamlGroup(k.Value, s.pos(k), v)
	})
}

func (s *source) pos(n *yaml.Node) Pos { return Pos{File: s.file, Line: n.Line} }

func (s *source) yamlGroup(name string, p Pos, v *yaml.Node) error {
	if name == "" {
		return errAt(p, ErrSyntax, "empty group name")
	}
	g := s.declare(name, p)
	v = deref(v)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		return errAt(s.pos(v), ErrSyntax, "group %s must be a map with hosts, children or vars, got %s", name, kindName(v))
	}
	return eachPair(s.file, v, func(k, val *yaml.Node) error {
		val = deref(val)
		switch k.Value {
		case "hosts":
			if isNull(val) {
				return nil
			}
			if val.Kind != yaml.MappingNode {
				return errAt(s.pos(val), ErrSyntax, "hosts of group %s must be a map of host names, got %s", name, kindName(val))
			}
			return eachPair(s.file, val, func(hk, hv *yaml.Node) error {
				hp := s.pos(hk)
				names, port, err := expandHostPattern(hk.Value)
				if err != nil {
					return errAt(hp, ErrSyntax, "%v", err)
				}
				vars, err := s.yamlVars(hv, "host "+hk.Value)
				if err != nil {
					return err
				}
				if port != "" {
					vars.set("ansible_port", port, hp)
				}
				for _, n := range names {
					s.addHost(g, n, hp, vars)
				}
				return nil
			})
		case "children":
			if isNull(val) {
				return nil
			}
			if val.Kind != yaml.MappingNode {
				return errAt(s.pos(val), ErrSyntax, "children of group %s must be a map of groups, got %s", name, kindName(val))
			}
			return eachPair(s.file, val, func(ck, cv *yaml.Node) error {
				if err := s.addChild(name, ck.Value, s.pos(ck)); err != nil {
					return err
				}
				return s.yamlGroup(ck.Value, s.pos(ck), cv)
			})
		case "vars":
			vars, err := s.yamlVars(val, "group "+name)
			if err != nil {
				return err
			}
			for k, v := range vars {
				g.vars[k] = v
			}
			return nil
		default:
			s.warnf(s.pos(k), "skipping unexpected key %q in group %s (only hosts, children and vars are read)", k.Value, name)
			return nil
		}
	})
}

// yamlVars reads a map of variables; null is an empty map.
func (s *source) yamlVars(n *yaml.Node, what string) (varMap, error) {
	return readVarMap(s.file, n, what)
}

func readVarMap(file string, n *yaml.Node, what string) (varMap, error) {
	vars := varMap{}
	n = deref(n)
	if isNull(n) {
		return vars, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errAt(Pos{file, n.Line}, ErrSyntax, "vars of %s must be a map, got %s", what, kindName(n))
	}
	err := eachPair(file, n, func(k, v *yaml.Node) error {
		v = deref(v)
		val, unsafe := nodeString(v)
		vars[k.Value] = rawVar{val: val, pos: Pos{file, k.Line}, unsafe: unsafe}
		return nil
	})
	return vars, err
}

// nodeString is a variable's value as a string: scalars as written, null as
// "", lists and maps as compact YAML. Values tagged !unsafe or !vault are
// reported unsafe: never interpolated.
func nodeString(n *yaml.Node) (string, bool) {
	if n == nil {
		return "", false
	}
	unsafe := n.Tag == "!unsafe" || n.Tag == "!vault"
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", false
		}
		return n.Value, unsafe
	case yaml.SequenceNode, yaml.MappingNode:
		c := plainCopy(n, 0)
		c.Style = yaml.FlowStyle
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		if err := enc.Encode(c); err != nil {
			return "", unsafe
		}
		_ = enc.Close()
		return strings.TrimSpace(b.String()), unsafe
	}
	return "", unsafe
}

// plainCopy copies n without comments, anchors or aliases, for printing.
func plainCopy(n *yaml.Node, depth int) *yaml.Node {
	n = deref(n)
	c := &yaml.Node{Kind: n.Kind, Style: n.Style &^ (yaml.LiteralStyle | yaml.FoldedStyle), Tag: n.Tag, Value: n.Value}
	if depth > 50 {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "..."}
	}
	for _, k := range n.Content {
		c.Content = append(c.Content, plainCopy(k, depth+1))
	}
	return c
}

// parseYAMLDoc parses the first YAML document of data, turning yaml.v3's
// errors into file:line errors. It returns nil for an empty document.
func parseYAMLDoc(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// JSON that YAML rejects (tabs in indentation) is still JSON.
		var j any
		if jerr := json.Unmarshal(data, &j); jerr == nil {
			if b, merr := yaml.Marshal(j); merr == nil && yaml.Unmarshal(b, &doc) == nil {
				return rootOf(&doc), nil
			}
		}
		return nil, yamlError(file, data, err)
	}
	return rootOf(&doc), nil
}

func rootOf(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		r := deref(doc.Content[0])
		if isNull(r) {
			return nil
		}
		return r
	}
	return nil
}

var reYAMLLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser (parserc.go), as
// opposed to its scanner. For a parser error yaml.v3 prints the 0-based line
// of the construct being parsed (else of the problem), where for a scanner
// error it prints the 1-based line; either prints no line for the first line.
var yamlParserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
	"found duplicate %TAG directive":         true,
}

// yamlSyntaxPrefixes start the messages of yaml.v3's scanner and parser;
// other errors (an unknown anchor) have no place in the file.
var yamlSyntaxPrefixes = []string{"found ", "did not find ", "could not find ", "mapping values are not allowed",
	"block sequence entries are not allowed", "control characters are not allowed"}

// yamlError turns a yaml.v3 error into a file:line error, the line counted
// from 1 as editors count.
func yamlError(file string, data []byte, err error) error {
	msg := err.Error()
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	line := 0
	if m := reYAMLLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		syntax := false
		for _, p := range yamlSyntaxPrefixes {
			syntax = syntax || strings.HasPrefix(msg, p)
		}
		switch {
		case yamlParserProblems[msg]:
			line++
			// The line is where the enclosing map or list begins, or,
			// when that is the first line, the mistake itself.
			msg += " (here or further down in the block that starts here)"
		case line == 0 && syntax:
			line = 1
		}
		// At the end of the file yaml.v3 points past the last line.
		if n := bytes.Count(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) + 1; line > n {
			line = n
		}
	}
	return &Error{File: file, Line: line, Kind: ErrSyntax, Msg: "invalid YAML: " + msg}
}

// eachPair calls f for every key/value of a mapping, following aliases and
// YAML merge keys (<<). Keys must be scalars.
func eachPair(file string, m *yaml.Node, f func(k, v *yaml.Node) error) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return errAt(Pos{file, k.Line}, ErrSyntax, "a map key must be a plain name, got %s", kindName(k))
		}
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			dv := deref(v)
			srcs := []*yaml.Node{dv}
			if dv.Kind == yaml.SequenceNode {
				srcs = dv.Content
			}
			for _, src := range srcs {
				src = deref(src)
				if src.Kind != yaml.MappingNode {
					return errAt(Pos{file, k.Line}, ErrSyntax, "a merge key (<<) needs a map, got %s", kindName(src))
				}
				if err := eachPair(file, src, f); err != nil {
					return err
				}
			}
			continue
		}
		if err := f(k, v); err != nil {
			return err
		}
	}
	return nil
}

// deref follows aliases (bounded, so a malformed chain cannot loop).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	}
	return "nothing"
}

// loadVarsFile reads an extra-vars file (-e @file, kubeasz's config.yml):
// a YAML or JSON map of variables.
func loadVarsFile(file string, data []byte) (varMap, error) {
	root, err := parseYAMLDoc(file, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return varMap{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, errAt(Pos{file, root.Line}, ErrSyntax, "a vars file must be a map of variables, got %s", kindName(root))
	}
	return readVarMap(file, root, file)
}
