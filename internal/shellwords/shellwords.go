// Package shellwords is the one word splitter: a line of a file that users
// write (an Ansible INI host line, an `ansible-playbook -e` argument, a
// systemd ExecStart=) into its words, by the rules of that file's dialect.
// The dialects differ only in a few settings, so they share one loop.
package shellwords

import (
	"fmt"
	"strings"
)

// Dialect is how one kind of file splits words. Blanks separate words
// outside quotes; single and double quotes group and are removed.
type Dialect struct {
	// Blanks are the separators.
	Blanks string
	// Escapes lists the characters a backslash escapes, outside quotes and
	// inside double quotes alike ("" means any character). A backslash
	// before any other character is kept as written.
	Escapes string
	// EscapesInDouble, when not "", narrows what a backslash escapes inside
	// double quotes (POSIX: only `"` and `\`).
	EscapesInDouble string
	// EscapesInSingle: the backslash escapes inside single quotes too.
	EscapesInSingle bool
	// TrailingBackslashIsError: a line ending in a lone backslash outside
	// quotes is an error instead of a literal backslash.
	TrailingBackslashIsError bool
	// Comments: an unquoted '#' ends the line.
	Comments bool
	// Templates: {{ ... }} is one piece, blanks and quotes inside included.
	Templates bool
}

var (
	// INI is an Ansible INI host line: POSIX shlex with comments.
	INI = Dialect{Blanks: " \t", EscapesInDouble: `"\`, TrailingBackslashIsError: true, Comments: true}
	// KeyValue is an `ansible-playbook -e` argument as Ansible's parse_kv
	// reads it: a backslash keeps the next space, quote, '=' or backslash
	// (in quotes too), and {{ ... }} is one piece.
	KeyValue = Dialect{Blanks: " \t\n", Escapes: " \t'\"=\\", EscapesInSingle: true, Templates: true}
	// Systemd is a unit's command line (ExecStart=, Environment=): a
	// backslash escapes any character outside single quotes.
	Systemd = Dialect{Blanks: " \t"}
)

// Split splits s into words by d's rules.
func (d Dialect) Split(s string) ([]string, error) {
	var (
		out    []string
		cur    strings.Builder
		inWord bool
		quote  byte
		depth  int // {{ nesting
	)
	escapes := func(set string, c byte) bool { return set == "" || strings.IndexByte(set, c) >= 0 }
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			next := s[i+1]
			ok := false
			switch {
			case quote == 0:
				ok = escapes(d.Escapes, next)
			case quote == '"':
				ok = escapes(d.Escapes, next) && (d.EscapesInDouble == "" || strings.IndexByte(d.EscapesInDouble, next) >= 0)
			case quote == '\'':
				ok = d.EscapesInSingle && escapes(d.Escapes, next)
			}
			if ok {
				i++
				cur.WriteByte(next)
				inWord = true
				continue
			}
		}
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case d.Templates && c == '{' && i+1 < len(s) && s[i+1] == '{':
			depth++
			cur.WriteString("{{")
			i++
			inWord = true
		case d.Templates && depth > 0 && c == '}' && i+1 < len(s) && s[i+1] == '}':
			depth--
			cur.WriteString("}}")
			i++
		case depth > 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case d.Comments && c == '#':
			i = len(s)
		case c == '\\' && i+1 == len(s) && d.TrailingBackslashIsError:
			return nil, fmt.Errorf("line ends with a backslash")
		case strings.IndexByte(d.Blanks, c) >= 0:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("no closing quotation (%c)", quote)
	}
	if depth > 0 {
		return nil, fmt.Errorf("{{ without }}")
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
