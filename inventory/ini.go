package inventory

import (
	"regexp"
	"strings"

	"github.com/ezrestore/ezrestore/internal/shellwords"
)

// Ansible INI inventory, as kubeasz writes clusters/<name>/hosts:
//
//	[group]              hosts, one pattern per line, with inline key=value vars
//	[group:children]     child group names
//	[group:vars]         key=value lines
//
// Lines starting with '#' or ';' are comments; on host lines an unquoted '#'
// ends the line (Ansible splits them like a shell). Host lines before any
// section belong to "ungrouped".

var (
	reSection   = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$`)
	reGroupLine = regexp.MustCompile(`^([^:\]\s]+)\s*(?:[#;].*)?$`)
)

// parseINI parses an INI inventory into s.
func parseINI(s *source, data string) error {
	section, kind := "ungrouped", ""
	for i, line := range strings.Split(data, "\n") {
		p := Pos{File: s.file, Line: i + 1}
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if i == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if m := reSection.FindStringSubmatch(line); m != nil {
			section, kind = m[1], m[2]
			switch kind {
			case "":
				s.declare(section, p)
			case "children":
				s.declare(section, p)
			case "vars":
				g := s.group(section, p)
				if g.varsPos.Line == 0 {
					g.varsPos = p
				}
			default:
				return errAt(p, ErrSyntax, "section [%s:%s] has an unknown type %q (want children or vars)", section, kind, kind)
			}
			continue
		}
		if line[0] == '[' && strings.HasSuffix(line, "]") {
			return errAt(p, ErrSyntax, "invalid section %s: a section is [name], [name:children] or [name:vars], without spaces", line)
		}
		if line[0] == '[' && !strings.Contains(line, "]") {
			// No host pattern starts with '[' and lacks ']' (a range and a
			// bracketed IPv6 address both close), so this is a header.
			name := strings.Fields(line)[0]
			return errAt(p, ErrSyntax, "section header %s has no closing ]: write %s] (Ansible would not read this line either)", name, name)
		}
		switch kind {
		case "":
			if err := parseINIHostLine(s, section, line, p); err != nil {
				return err
			}
		case "children":
			m := reGroupLine.FindStringSubmatch(line)
			if m == nil {
				return errAt(p, ErrSyntax, "expected a group name in [%s:children], got %q", section, line)
			}
			if err := s.addChild(section, m[1], p); err != nil {
				return err
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return errAt(p, ErrSyntax, "expected key=value in [%s:vars], got %q", section, line)
			}
			s.group(section, p).vars.set(k, iniVarValue(strings.TrimSpace(v)), p)
		}
	}
	for _, name := range s.groupOrder {
		g := s.groups[name]
		switch {
		case g.declared:
		case g.childPos.Line > 0:
			// Ansible accepts a child group that is defined nowhere as an
			// empty group; so do we, but say so: it is usually a typo.
			s.warnf(g.childPos, "group %s named under [%s:children] is defined nowhere; it has no hosts", name, g.childOf)
			g.declared, g.pos = true, g.childPos
		default:
			return errAt(g.varsPos, ErrSyntax, "[%s:vars] for a group that is defined nowhere: no [%s] or [%s:children] section and no [...:children] names it (Ansible refuses it too)", name, name, name)
		}
	}
	return nil
}

func parseINIHostLine(s *source, group, line string, p Pos) error {
	tokens, err := shellwords.INI.Split(line)
	if err != nil {
		return errAt(p, ErrSyntax, "%v", err)
	}
	if len(tokens) == 0 {
		return nil // only a comment
	}
	names, port, err := expandHostPattern(tokens[0])
	if err != nil {
		return errAt(p, ErrSyntax, "%v", err)
	}
	vars := varMap{}
	for _, t := range tokens[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return errAt(p, ErrSyntax, "expected key=value after host %s, got %q", tokens[0], t)
		}
		vars.set(k, v, p)
	}
	if port != "" {
		vars.set("ansible_port", port, p)
	}
	g := s.declare(group, p)
	for _, n := range names {
		s.addHost(g, n, p, vars)
	}
	return nil
}

// iniVarValue reads a [g:vars] value the way Ansible does: a quoted string
// loses its quotes (and anything after it that is only a comment); any other
// text is kept as written.
func iniVarValue(v string) string {
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		return v
	}
	q := v[0]
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v):
			i++
			switch n := v[i]; n {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '\'', '"':
				b.WriteByte(n)
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == q:
			rest := strings.TrimSpace(v[i+1:])
			if rest == "" || rest[0] == '#' {
				return b.String()
			}
			return v // not a single literal: Ansible keeps the text
		default:
			b.WriteByte(c)
		}
	}
	return v // unterminated quote: kept as written
}
