package etcdhost

import (
	"fmt"
	"strings"

	"github.com/ezrestore/ezrestore/internal/shellwords"
)

// Unit is the part of a systemd unit (as `systemctl cat` prints it, drop-ins
// included) that tells how a service is started.
type Unit struct {
	// ExecStart is the last ExecStart= of [Service], split into words.
	ExecStart []string
	// Environment holds Environment= assignments in order.
	Environment map[string]string
	// EnvironmentFiles are the EnvironmentFile= paths; Optional marks a leading "-".
	EnvironmentFiles []EnvFile
	User             string
	WorkingDirectory string
}

// EnvFile is one EnvironmentFile= entry.
type EnvFile struct {
	Path     string
	Optional bool
}

// ParseUnit reads `systemctl cat` output. Later assignments override earlier
// ones as systemd applies drop-ins; an empty ExecStart= resets the list.
func ParseUnit(text string) (*Unit, error) {
	u := &Unit{Environment: map[string]string{}}
	section := ""
	var execs []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		// A trailing backslash continues the line; comment lines inside are skipped.
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") || strings.HasPrefix(next, ";") {
				line = strings.TrimSuffix(line, `\`) + ` \`
				continue
			}
			line = strings.TrimSuffix(line, `\`) + " " + next
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		if section != "Service" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "ExecStart":
			if val == "" {
				execs = nil
			} else {
				execs = append(execs, val)
			}
		case "Environment":
			words, err := shellwords.Systemd.Split(val)
			if err != nil {
				return nil, fmt.Errorf("the Environment= line %s: %v", val, err)
			}
			for _, w := range words {
				if k, v, ok := strings.Cut(w, "="); ok {
					u.Environment[k] = v
				}
			}
		case "EnvironmentFile":
			if val == "" {
				u.EnvironmentFiles = nil
				continue
			}
			ef := EnvFile{Path: val}
			if strings.HasPrefix(val, "-") {
				ef = EnvFile{Path: val[1:], Optional: true}
			}
			u.EnvironmentFiles = append(u.EnvironmentFiles, ef)
		case "User":
			u.User = val
		case "WorkingDirectory":
			u.WorkingDirectory = strings.TrimPrefix(val, "-")
		}
	}
	if len(execs) == 0 {
		return nil, fmt.Errorf("no ExecStart= in [Service]")
	}
	words, err := shellwords.Systemd.Split(execs[len(execs)-1])
	if err != nil {
		return nil, fmt.Errorf("ExecStart: %v", err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty ExecStart=")
	}
	// Prefixes like "-", "@", "+", "!" change how systemd runs the binary, not what it gets.
	words[0] = strings.TrimLeft(words[0], "-@+!:")
	u.ExecStart = words
	return u, nil
}

// ParseEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does.
func ParseEnvFile(text string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env
}

// expandEnv substitutes ${VAR} and $VAR in ExecStart words as systemd does
// ($VAR unquoted splits into words; ${VAR} stays one word).
func expandEnv(words []string, env map[string]string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") && len(w) > 1 {
			out = append(out, strings.Fields(env[w[1:]])...)
			continue
		}
		for {
			i := strings.Index(w, "${")
			if i < 0 {
				break
			}
			j := strings.IndexByte(w[i:], '}')
			if j < 0 {
				break
			}
			w = w[:i] + env[w[i+2:i+j]] + w[i+j+1:]
		}
		out = append(out, w)
	}
	return out
}
