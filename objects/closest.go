package objects

import (
	"sort"
	"strings"
)

// Closest returns up to n of candidates nearest to name: those containing it
// or contained in it first, then those within a few edits, nearest first.
// It backs "did you mean" in errors about names that do not exist.
func Closest(name string, candidates []string, n int) []string {
	return closest(name, candidates, n)
}

func closest(name string, candidates []string, n int) []string {
	type scored struct {
		s string
		d int
	}
	limit := len(name)/3 + 1
	var out []scored
	seen := map[string]bool{}
	for _, c := range candidates {
		if seen[c] || c == name {
			continue
		}
		seen[c] = true
		d := distance(name, c)
		if strings.Contains(c, name) || strings.Contains(name, c) && len(c) > 2 {
			d = min(d, 1)
		}
		if d <= limit {
			out = append(out, scored{c, d})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].d != out[j].d {
			return out[i].d < out[j].d
		}
		return out[i].s < out[j].s
	})
	names := []string{}
	for i := 0; i < len(out) && i < n; i++ {
		names = append(names, out[i].s)
	}
	return names
}

// distance is the edit distance between a and b counting a swap of two
// neighbours as one edit (pdo is one edit from pod): the typos people make.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
