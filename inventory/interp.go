package inventory

import (
	"regexp"
	"strings"
)

// Interpolation of "{{ name }}" in variable values, enough for kubeasz's and
// kubespray's inventories:
//
//	{{ name }}                              the variable's value, itself interpolated
//	{{ name | default('text') }}            text when name is undefined (also d(), "text")
//	{{ name | default(other) }}             other's value when name is undefined
//
// Anything else ("{{ x | lower }}", "{% if %}" blocks) is left exactly as
// written: ezrestore never reads those variables, and guessing would be worse.
// An undefined name is also left as written and remembered, so that reading
// such a variable for something that matters (an address, a member name) can
// fail with the variable and the place it was set. A cycle is an error.

var (
	reIdent   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reDefault = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*\|\s*(?:default|d)\(\s*(?:'([^']*)'|"([^"]*)"|([A-Za-z_][A-Za-z0-9_]*))\s*\)$`)
)

type resolver struct {
	vars  map[string]rawVar
	magic map[string]string // inventory_hostname and friends; win over vars
	// cluster replaces _cluster_name_ in every value when set.
	cluster string

	done     map[string]string
	undef    map[string][]string // var -> undefined names it uses
	visiting map[string]bool
	stack    []string
}

func newResolver(vars map[string]rawVar, magic map[string]string, cluster string) *resolver {
	return &resolver{vars: vars, magic: magic, cluster: cluster,
		done: map[string]string{}, undef: map[string][]string{}, visiting: map[string]bool{}}
}

// get returns the interpolated value of name.
func (r *resolver) get(name string) (string, bool, error) {
	if v, ok := r.magic[name]; ok {
		return v, true, nil
	}
	rv, ok := r.vars[name]
	if !ok {
		return "", false, nil
	}
	if v, ok := r.done[name]; ok {
		return v, true, nil
	}
	if r.visiting[name] {
		i := 0
		for i < len(r.stack) && r.stack[i] != name {
			i++
		}
		chain := append(append([]string{}, r.stack[i:]...), name)
		first := r.vars[chain[0]]
		return "", false, errAt(first.pos, ErrBadVar, "variable %s refers to itself: %s", chain[0], strings.Join(chain, " -> "))
	}
	r.visiting[name] = true
	r.stack = append(r.stack, name)
	defer func() {
		delete(r.visiting, name)
		r.stack = r.stack[:len(r.stack)-1]
	}()
	val := rv.val
	if r.cluster != "" {
		val = strings.ReplaceAll(val, "_cluster_name_", r.cluster)
	}
	if !rv.unsafe {
		var undef []string
		var err error
		val, undef, err = r.expand(val)
		if err != nil {
			return "", false, err
		}
		if len(undef) > 0 {
			r.undef[name] = undef
		}
	}
	r.done[name] = val
	return val, true, nil
}

// expand interpolates s, returning the names it used that are undefined
// (directly or through the variables it uses).
func (r *resolver) expand(s string) (string, []string, error) {
	if !strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#") {
		return s, nil, nil
	}
	var b strings.Builder
	var undef []string
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		whole := s[i : i+2+j+2]
		expr := strings.TrimSpace(s[i+2 : i+2+j])
		s = s[i+2+j+2:]

		val, ok, missing, err := r.eval(expr)
		if err != nil {
			return "", nil, err
		}
		undef = append(undef, missing...)
		if ok {
			b.WriteString(val)
		} else {
			b.WriteString(whole)
		}
	}
	return b.String(), undef, nil
}

// eval evaluates one {{ expression }}. ok is false when it must stay as
// written; missing lists undefined names it depends on.
func (r *resolver) eval(expr string) (val string, ok bool, missing []string, err error) {
	if reIdent.MatchString(expr) {
		v, found, err := r.get(expr)
		if err != nil || !found {
			return "", false, []string{expr}, err
		}
		return v, true, r.undef[expr], nil
	}
	if m := reDefault.FindStringSubmatch(expr); m != nil {
		v, found, err := r.get(m[1])
		if err != nil {
			return "", false, nil, err
		}
		if found {
			return v, true, r.undef[m[1]], nil
		}
		if m[4] == "" {
			return m[2] + m[3], true, nil, nil
		}
		v, found, err = r.get(m[4])
		if err != nil || !found {
			return "", false, []string{m[4]}, err
		}
		return v, true, r.undef[m[4]], nil
	}
	return "", false, nil, nil
}
