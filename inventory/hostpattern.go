package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// maxRangeHosts bounds what one host pattern may expand to, so a typo such as
// [1:99999999] fails clearly instead of eating the bastion's memory.
const maxRangeHosts = 10000

const rangeLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandHostPattern turns an inventory host pattern into host names and an
// optional port, as Ansible does: "10.0.0.[1:3]", "node[01:03]:2222",
// "db-[a:c]", "[2001:db8::1]:22" (an IPv6 literal, not a range) or a bare
// IPv6 address (no port).
func expandHostPattern(pat string) (names []string, port string, err error) {
	if pat == "" {
		return nil, "", fmt.Errorf("empty host name")
	}
	if strings.HasSuffix(pat, ":") {
		return nil, "", fmt.Errorf("host pattern %q ends in ':'", pat)
	}
	if strings.ContainsAny(pat, "=,\"'") {
		return nil, "", fmt.Errorf("%q is not a host name", pat)
	}
	// [v6addr] or [v6addr]:port
	if strings.HasPrefix(pat, "[") {
		if end := strings.Index(pat, "]"); end > 0 {
			inner, rest := pat[1:end], pat[end+1:]
			if isIPv6Literal(inner) && (rest == "" || strings.HasPrefix(rest, ":")) {
				if rest != "" {
					port = rest[1:]
					if !isPort(port) {
						return nil, "", fmt.Errorf("host pattern %q has an invalid port %q", pat, port)
					}
				}
				return []string{inner}, port, nil
			}
		}
	}
	// Split off ":port" when exactly one colon sits outside brackets.
	colons, last, depth := 0, -1, 0
	for i, c := range pat {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				colons++
				last = i
			}
		}
	}
	body := pat
	if colons == 1 {
		body, port = pat[:last], pat[last+1:]
		if !isPort(port) {
			return nil, "", fmt.Errorf("host pattern %q has an invalid port %q", pat, port)
		}
	} else if colons > 1 {
		// A bare IPv6 address: no ranges, no port.
		if strings.ContainsAny(pat, "[]") {
			return nil, "", fmt.Errorf("host pattern %q: an IPv6 address with a port must be written [addr]:port", pat)
		}
		return []string{pat}, "", nil
	}
	names, err = expandRanges(body)
	if err != nil {
		return nil, "", fmt.Errorf("host pattern %q: %w", pat, err)
	}
	return names, port, nil
}

func isIPv6Literal(s string) bool {
	if strings.Count(s, ":") < 2 || !(strings.Contains(s, "::") || strings.Count(s, ":") >= 3) {
		return false
	}
	for _, c := range s {
		if !(c == ':' || c == '.' || c == '%' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return false
		}
	}
	return true
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536 && s[0] != '+'
}

// expandRanges expands every [beg:end] or [beg:end:step] in s, left to right.
func expandRanges(s string) ([]string, error) {
	open := strings.IndexByte(s, '[')
	if open < 0 {
		if strings.IndexByte(s, ']') >= 0 {
			return nil, fmt.Errorf("']' without '['")
		}
		return []string{s}, nil
	}
	if strings.IndexByte(s[:open], ']') >= 0 {
		return nil, fmt.Errorf("']' without '['")
	}
	closeRel := strings.IndexByte(s[open:], ']')
	if closeRel < 0 {
		return nil, fmt.Errorf("range without closing ']'")
	}
	head, spec, tail := s[:open], s[open+1:open+closeRel], s[open+closeRel+1:]
	seq, err := expandRange(spec)
	if err != nil {
		return nil, err
	}
	rest, err := expandRanges(tail)
	if err != nil {
		return nil, err
	}
	if len(seq)*len(rest) > maxRangeHosts {
		return nil, fmt.Errorf("range expands to more than %d hosts", maxRangeHosts)
	}
	out := make([]string, 0, len(seq)*len(rest))
	for _, a := range seq {
		for _, b := range rest {
			out = append(out, head+a+b)
		}
	}
	return out, nil
}

// expandRange expands "beg:end[:step]": numbers (zero-padded when beg has a
// leading zero, which then needs as many digits as end) or single letters.
func expandRange(spec string) ([]string, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("range [%s] must be [begin:end] or [begin:end:step]", spec)
	}
	beg, end, step := parts[0], parts[1], 1
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("range [%s] has no end", spec)
	}
	if len(parts) == 3 {
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("range [%s] has an invalid step %q", spec, parts[2])
		}
		step = n
	}
	bi, ei := strings.Index(rangeLetters, beg), strings.Index(rangeLetters, end)
	if len(beg) == 1 && len(end) == 1 && bi >= 0 && ei >= 0 {
		if bi > ei {
			return nil, fmt.Errorf("range [%s] begins after its end", spec)
		}
		var out []string
		for i := bi; i <= ei; i += step {
			out = append(out, rangeLetters[i:i+1])
		}
		return out, nil
	}
	if !allDigits(beg) || !allDigits(end) {
		return nil, fmt.Errorf("range [%s] must be numbers or single letters", spec)
	}
	width := 0
	if len(beg) > 1 && beg[0] == '0' {
		width = len(beg)
		if len(end) != width {
			return nil, fmt.Errorf("range [%s]: a zero-padded begin needs an end of the same width", spec)
		}
	}
	b, err1 := strconv.Atoi(beg)
	e, err2 := strconv.Atoi(end)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("range [%s] is out of bounds", spec)
	}
	if b > e {
		return nil, fmt.Errorf("range [%s] begins after its end", spec)
	}
	if (e-b)/step+1 > maxRangeHosts {
		return nil, fmt.Errorf("range [%s] expands to more than %d hosts", spec, maxRangeHosts)
	}
	var out []string
	for i := b; i <= e; i += step {
		out = append(out, fmt.Sprintf("%0*d", width, i))
	}
	return out, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
