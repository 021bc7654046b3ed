package diff

import (
	"fmt"
	"strings"
)

// Unified returns a unified diff of two texts (diff -u style, context lines
// of context around each change), "" when they are equal. It aligns the
// lines on their longest common subsequence, which for the YAML of one
// object (at most a few thousand lines) is cheap.
func Unified(fromName, toName, a, b string, context int) string {
	if a == b {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	ops := align(x, y)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", fromName, toName)
	// Hunks: runs of ops around changes, with context lines either side.
	for start := 0; start < len(ops); {
		for start < len(ops) && ops[start].kind == ' ' {
			start++
		}
		if start == len(ops) {
			break
		}
		lo := max(start-context, 0)
		end := start
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				break
			}
			end = run
		}
		hi := min(end+context, len(ops))
		ai, bi, an, bn := ops[lo].a, ops[lo].b, 0, 0
		for _, o := range ops[lo:hi] {
			if o.kind != '+' {
				an++
			}
			if o.kind != '-' {
				bn++
			}
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", ai+1, an, bi+1, bn)
		for _, o := range ops[lo:hi] {
			line := ""
			if o.kind == '+' {
				line = y[o.b]
			} else {
				line = x[o.a]
			}
			out.WriteByte(o.kind)
			out.WriteString(line)
			out.WriteByte('\n')
		}
		start = hi
	}
	return out.String()
}

type op struct {
	kind byte // ' ' both, '-' only in a, '+' only in b
	a, b int  // positions in a and b when the op starts
}

func align(x, y []string) []op {
	// lcs[i][j] is the length of the LCS of x[i:] and y[j:].
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
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
	var ops []op
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, op{' ', i, j})
			i++
			j++
		case j == len(y) || i < len(x) && lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, op{'-', i, j})
			i++
		default:
			ops = append(ops, op{'+', i, j})
			j++
		}
	}
	return ops
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
