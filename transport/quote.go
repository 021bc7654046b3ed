package transport

import "strings"

// Quote makes s one word for a POSIX shell, whatever it contains: the result
// is s in single quotes, each inner single quote closed, escaped and reopened. Every value
// that reaches a remote command line goes through Quote.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, needsQuote) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// needsQuote is true for every rune outside a small set that no shell treats specially.
func needsQuote(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("-_./:=,@+%", r)
}

// QuoteAll quotes each word and joins them with spaces.
func QuoteAll(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
