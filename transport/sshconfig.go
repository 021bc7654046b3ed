package transport

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// sshConfig is the operator's OpenSSH client config (~/.ssh/config, or the
// file -F names), parsed by github.com/kevinburke/ssh_config.
type sshConfig struct {
	path string
	cfg  *ssh_config.Config
}

// loadSSHConfig reads file, or ~/.ssh/config when file is empty. A missing
// default file is no config; a file that cannot be read or parsed is a
// warning and no config (what OpenSSH would do with it is unknown).
func loadSSHConfig(file string, s *settings) *sshConfig {
	c := &sshConfig{}
	explicit := file != ""
	if !explicit {
		home, err := os.UserHomeDir()
		if err != nil {
			return c
		}
		file = filepath.Join(home, ".ssh", "config")
	}
	file = expandHome(file)
	if file == "none" || file == "/dev/null" {
		return c
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return c
		}
		s.warn("ssh_config", file, "cannot be read (%v); not used", err)
		return c
	}
	cfg, err := ssh_config.DecodeBytes(data)
	if err != nil {
		s.warn("ssh_config", file, "cannot be parsed (%v); not used", err)
		return c
	}
	c.path, c.cfg = file, cfg
	return c
}

// apply feeds the options of every Host block matching alias, in file
// order, into s (the first value obtained wins, as in OpenSSH).
func (c *sshConfig) apply(alias string, s *settings) {
	if c == nil || c.cfg == nil {
		return
	}
	for _, h := range c.cfg.Hosts {
		if !h.Matches(alias) {
			continue
		}
		for _, n := range h.Nodes {
			switch t := n.(type) {
			case *ssh_config.KV:
				if strings.EqualFold(t.Key, "Include") {
					continue
				}
				s.setFrom(t.Key, unquote(t.Value), c.path+":"+strconv.Itoa(t.Pos().Line), false)
			case *ssh_config.Include:
				// Included files are read for the options ezrestore follows.
				from := c.path + ":" + strconv.Itoa(t.Pos().Line) + " (Include)"
				for key, name := range supported {
					if key == "identityfile" || key == "userknownhostsfile" || key == "globalknownhostsfile" {
						if vals, err := t.GetAll(alias, name); err == nil {
							for _, v := range vals {
								s.setFrom(name, unquote(v), from, false)
							}
						}
						continue
					}
					if v := t.Get(alias, name); v != "" {
						s.setFrom(name, unquote(v), from, false)
					}
				}
			}
		}
	}
}

func unquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}
