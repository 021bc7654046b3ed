package inventory

// This file holds the parsed-but-unresolved inventory that the INI and YAML
// parsers both fill: groups, their hosts, children and vars, each with the
// place it was written. resolve.go turns it into the typed model.

// rawVar is one variable as written, before precedence and interpolation.
type rawVar struct {
	val string
	pos Pos
	// unsafe values (YAML's !unsafe or !vault) are never interpolated.
	unsafe bool
}

type varMap map[string]rawVar

func (m varMap) set(name, val string, p Pos) { m[name] = rawVar{val: val, pos: p} }

type rawGroup struct {
	name string
	pos  Pos // where the group was first declared; Line 0 when only implied
	// declared is false for a group that so far only has a [g:vars] section.
	declared bool
	varsPos  Pos // first [g:vars] section, for "vars for undefined group"
	// childOf and childPos say where the group was first named as a child,
	// for the warning about a child group that is defined nowhere.
	childOf  string
	childPos Pos
	hosts    []string
	hostSet  map[string]bool
	children []string
	childSet map[string]bool
	parents  []string
	vars     varMap
	// dirVars come from group_vars/<name>[.yml] next to the inventory.
	dirVars varMap
}

type rawHost struct {
	name string
	pos  Pos
	vars varMap
	// dirVars come from host_vars/<name>[.yml] next to the inventory.
	dirVars varMap
}

type source struct {
	file       string
	groups     map[string]*rawGroup
	groupOrder []string
	hosts      map[string]*rawHost
	hostOrder  []string
	warnings   []string
}

func newSource(file string) *source {
	s := &source{file: file, groups: map[string]*rawGroup{}, hosts: map[string]*rawHost{}}
	s.group("all", Pos{File: file}).declared = true
	s.group("ungrouped", Pos{File: file}).declared = true
	return s
}

// group returns the named group, creating it (undeclared) at p.
func (s *source) group(name string, p Pos) *rawGroup {
	if g, ok := s.groups[name]; ok {
		return g
	}
	g := &rawGroup{name: name, pos: p, hostSet: map[string]bool{}, childSet: map[string]bool{}, vars: varMap{}}
	s.groups[name] = g
	s.groupOrder = append(s.groupOrder, name)
	return g
}

// declare marks the group as defined (by a hosts or children section) at p.
func (s *source) declare(name string, p Pos) *rawGroup {
	g := s.group(name, p)
	if !g.declared {
		g.declared = true
		g.pos = p
	}
	return g
}

// addHost adds host name to group g with vars; a host seen again keeps its
// first position and its vars merge, later values winning.
func (s *source) addHost(g *rawGroup, name string, p Pos, vars varMap) {
	h, ok := s.hosts[name]
	if !ok {
		h = &rawHost{name: name, pos: p, vars: varMap{}}
		s.hosts[name] = h
		s.hostOrder = append(s.hostOrder, name)
	}
	for k, v := range vars {
		h.vars[k] = v
	}
	if !g.hostSet[name] {
		g.hostSet[name] = true
		g.hosts = append(g.hosts, name)
	}
}

// addChild makes child a child group of parent, refusing loops.
func (s *source) addChild(parent, child string, p Pos) error {
	if parent == child || s.descends(parent, child) {
		return errAt(p, ErrSyntax, "adding group %s as a child of %s makes a loop of groups", child, parent)
	}
	if child == "all" {
		return errAt(p, ErrSyntax, "group all cannot be a child of %s", parent)
	}
	pg := s.group(parent, p)
	cg := s.group(child, p)
	if !pg.childSet[child] {
		pg.childSet[child] = true
		pg.children = append(pg.children, child)
		cg.parents = append(cg.parents, parent)
	}
	if cg.childPos.Line == 0 {
		cg.childOf, cg.childPos = parent, p
	}
	return nil
}

// descends reports whether group g is a descendant of (or is) anc.
func (s *source) descends(g, anc string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if n == anc {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		if ng, ok := s.groups[n]; ok {
			for _, p := range ng.parents {
				if walk(p) {
					return true
				}
			}
		}
		return false
	}
	return walk(g)
}

func (s *source) warnf(p Pos, format string, args ...any) {
	s.warnings = append(s.warnings, errAt(p, nil, format, args...).Error())
}
