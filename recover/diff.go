package recover

import (
	"fmt"
	"strings"
)

// lineDiff is a unified-style listing of the lines that differ between a
// and b (named from and to), by their longest common subsequence: "-"
// lines go, "+" lines come; unchanged lines are left out except one of
// context before each change.
func lineDiff(from, to, a, b string) string {
	x := strings.Split(strings.TrimRight(a, "\n"), "\n")
	y := strings.Split(strings.TrimRight(b, "\n"), "\n")
	// lcs[i][j] is the common subsequence length of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", from, to)
	last := "" // the last unchanged line, shown as context before a change
	shown := true
	change := func(sign, line string) {
		if !shown && last != "" {
			out.WriteString("  " + last + "\n")
		}
		shown = true
		out.WriteString(sign + " " + line + "\n")
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			last, shown = x[i], false
			i++
			j++
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			change("-", x[i])
			i++
		default:
			change("+", y[j])
			j++
		}
	}
	return out.String()
}
