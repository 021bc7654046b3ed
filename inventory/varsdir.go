package inventory

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// group_vars/ and host_vars/ next to the inventory file, as Ansible reads
// them (kubespray keeps most settings there): for a group or host named N,
// the file N, N.yml, N.yaml or N.json, or every such file (or file without an
// extension) under the dir N/, in name order. Hidden files are skipped.

// readVarsDirs reads group_vars/ and host_vars/ in dir for the groups and
// hosts of s. Missing dirs are fine; a vault-encrypted file is skipped with
// a warning (ezrestore has no vault password).
func (s *source) readVarsDirs(dir string) error {
	for _, gn := range s.groupOrder {
		m, err := s.readVarsFor(filepath.Join(dir, "group_vars"), gn)
		if err != nil {
			return err
		}
		s.groups[gn].dirVars = m
	}
	for _, hn := range s.hostOrder {
		m, err := s.readVarsFor(filepath.Join(dir, "host_vars"), hn)
		if err != nil {
			return err
		}
		s.hosts[hn].dirVars = m
	}
	return nil
}

var varsExts = []string{"", ".yml", ".yaml", ".json"}

func (s *source) readVarsFor(dir, name string) (varMap, error) {
	out := varMap{}
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return out, nil
	}
	var files []string
	for _, ext := range varsExts {
		p := filepath.Join(dir, name+ext)
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			continue
		case fi.Mode().IsRegular():
			files = append(files, p)
		case fi.IsDir() && ext == "":
			var sub []string
			err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				base := d.Name()
				if q != p && strings.HasPrefix(base, ".") {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				if !d.IsDir() && d.Type().IsRegular() && varsFileExt(base) {
					sub = append(sub, q)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			sort.Strings(sub)
			files = append(files, sub...)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		if isVaultFile(data) {
			// Ansible would ask for the vault password (--ask-vault-pass).
			s.warnf(Pos{File: f, Line: 1}, "skipped: encrypted with ansible-vault and ezrestore has no vault password, so its variables are not set; pass any that ezrestore needs (connection, etcd) with -e")
			continue
		}
		m, err := loadVarsFile(f, data)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}

func varsFileExt(name string) bool {
	ext := filepath.Ext(name)
	for _, e := range varsExts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}
