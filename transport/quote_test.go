package transport

import (
	"os/exec"
	"strings"
	"testing"
)

// The shell must hand every value back byte for byte, and must run nothing
// hidden in it. A real sh is the judge: printf prints the quoted word between
// markers, and a hostile value that escaped its quotes would print or create
// something else.
func checkRoundTrip(t *testing.T, value string) {
	t.Helper()
	if strings.ContainsRune(value, 0) {
		return // a NUL cannot be part of a command line at all
	}
	out, err := exec.Command("sh", "-c", "printf '<%s>' "+Quote(value)).Output()
	if err != nil {
		t.Fatalf("sh failed for %q (quoted %s): %v", value, Quote(value), err)
	}
	if got := string(out); got != "<"+value+">" {
		t.Fatalf("value %q came back as %q (quoted %s)", value, got, Quote(value))
	}
}

func TestQuoteHostileValues(t *testing.T) {
	for _, v := range []string{
		"", "plain", "with space", "it's", `"double"`, "a;b", "$(id)", "`id`",
		"line\nbreak", "tab\there", `back\slash`, "$HOME", "*", "~root", "-n",
		"'", "''", `'\''`, "!event", "a&b|c", "{a,b}", "#comment", "é unicode",
	} {
		checkRoundTrip(t, v)
	}
}

func TestQuoteAllKeepsWordsApart(t *testing.T) {
	out, err := exec.Command("sh", "-c", `for w in `+QuoteAll("a b", "", "c;d")+`; do printf '[%s]' "$w"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "[a b][][c;d]" {
		t.Fatalf("got %q", got)
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"x", "'", "$(touch /tmp/pwned)", "a\nb", "\\"} {
		f.Add(s)
	}
	f.Fuzz(checkRoundTrip)
}
