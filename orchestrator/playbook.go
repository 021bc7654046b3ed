package orchestrator

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Playbook is an ordered list of named steps, as a user writes it in YAML.
type Playbook struct {
	Name  string `yaml:"name" json:"name"`
	Steps []Step `yaml:"steps" json:"steps"`
	// File is where the playbook came from, for error messages.
	File string `yaml:"-" json:"file"`
}

// Step is one entry of a playbook: an action run on the hosts of some groups.
type Step struct {
	Name   string   `yaml:"name" json:"name"`
	Action string   `yaml:"action" json:"action"`
	Hosts  []string `yaml:"hosts" json:"hosts,omitempty"`
	// Unreachable says what to do with a target host that cannot be reached:
	// "fail" (default) stops before anything changes; "skip" reports and goes on.
	Unreachable string `yaml:"unreachable" json:"unreachable,omitempty"`
	// Background lets the steps after this one start while it runs. The step
	// named by FinishBefore starts only once it has finished; without
	// FinishBefore the run waits for it at its end. For work that need not
	// hold up what follows (stopping kubelets, which write only through
	// apiservers that are already stopped), on hosts the following steps
	// do not touch.
	Background   bool   `yaml:"background" json:"background,omitempty"`
	FinishBefore string `yaml:"finish_before" json:"finish_before,omitempty"`
	// Params are the action's own settings.
	Params Params `yaml:"params" json:"params,omitempty"`
	// Line is where the step starts in File.
	Line int `yaml:"-" json:"-"`
}

// Params are a step's parameters with typed accessors.
type Params map[string]any

// String returns a string parameter, or def when absent.
func (p Params) String(key, def string) (string, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("param %s: want a string, got %v", key, v)
	}
	return s, nil
}

// Strings returns a list-of-strings parameter (a single string counts as a list of one).
func (p Params) Strings(key string) ([]string, error) {
	switch v := p[key].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("param %s: want a list of strings, got %v", key, e)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("param %s: want a list of strings, got %v", key, v)
	}
}

// Bool returns a boolean parameter, or def when absent.
func (p Params) Bool(key string, def bool) (bool, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("param %s: want true or false, got %v", key, v)
	}
	return b, nil
}

// LoadPlaybookFile reads a playbook from a file; see ParsePlaybook.
func LoadPlaybookFile(path string, actions Registry) (*Playbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("playbook: %w", err)
	}
	return ParsePlaybook(data, path, actions)
}

// ParsePlaybook parses and checks a playbook: every step has a unique name and
// an action of actions. Errors name file and line.
func ParsePlaybook(data []byte, file string, actions Registry) (*Playbook, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	pb := &Playbook{File: file}
	if err := root.Decode(pb); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	// yaml.v3 does not give decoded structs their lines; read them off the nodes.
	if len(root.Content) == 1 {
		doc := root.Content[0]
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == "steps" && doc.Content[i+1].Kind == yaml.SequenceNode {
				for j, n := range doc.Content[i+1].Content {
					if j < len(pb.Steps) {
						pb.Steps[j].Line = n.Line
					}
				}
			}
		}
	}
	if len(pb.Steps) == 0 {
		return nil, fmt.Errorf("%s: the playbook has no steps", file)
	}
	seen := map[string]int{}
	for i := range pb.Steps {
		s := &pb.Steps[i]
		where := fmt.Sprintf("%s:%d", file, s.Line)
		if strings.TrimSpace(s.Name) == "" {
			return nil, fmt.Errorf("%s: step %d has no name", where, i+1)
		}
		if prev, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("%s: step name %q is used twice (first at line %d); names must be unique so --from-step can find them", where, s.Name, prev)
		}
		seen[s.Name] = s.Line
		if _, ok := actions[s.Action]; !ok {
			return nil, fmt.Errorf("%s: step %q: unknown action %q (known: %s)", where, s.Name, s.Action, strings.Join(actions.Names(), ", "))
		}
		switch s.Unreachable {
		case "", "fail", "skip":
		default:
			return nil, fmt.Errorf("%s: step %q: unreachable must be fail or skip, not %q", where, s.Name, s.Unreachable)
		}
	}
	for i := range pb.Steps {
		s := &pb.Steps[i]
		where := fmt.Sprintf("%s:%d", file, s.Line)
		if s.FinishBefore == "" {
			continue
		}
		if !s.Background {
			return nil, fmt.Errorf("%s: step %q: finish_before is for background steps: add background: true, or remove finish_before", where, s.Name)
		}
		j, err := pb.StepIndex(s.FinishBefore)
		if err != nil {
			return nil, fmt.Errorf("%s: step %q: finish_before: %v", where, s.Name, err)
		}
		if j <= i {
			return nil, fmt.Errorf("%s: step %q: finish_before names %q, which comes before it: name a later step", where, s.Name, s.FinishBefore)
		}
	}
	return pb, nil
}

// StepIndex finds a step by name.
func (pb *Playbook) StepIndex(name string) (int, error) {
	for i, s := range pb.Steps {
		if s.Name == name {
			return i, nil
		}
	}
	names := make([]string, len(pb.Steps))
	for i, s := range pb.Steps {
		names[i] = fmt.Sprintf("%q", s.Name)
	}
	return -1, fmt.Errorf("no step named %q in %s; steps are %s", name, pb.File, strings.Join(names, ", "))
}
