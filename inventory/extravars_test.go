package inventory

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseExtraVars(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "x.yml", "level: file\nETCD_DATA_DIR: /data/etcd\n")
	vault := writeFile(t, dir, "vault.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n")
	list := writeFile(t, dir, "list.yml", "- a\n")

	type want struct {
		vars  map[string]string
		pos   map[string]string // Pos.String() of some vars
		files []string
	}
	cases := []struct {
		name string
		args []string
		want want
		err  string
	}{
		{name: "key=value", args: []string{"a=1"},
			want: want{vars: map[string]string{"a": "1"}, pos: map[string]string{"a": "-e a=1"}}},
		{name: "pairs in one argument, quoted", args: []string{"a=1 b='two words'"},
			want: want{vars: map[string]string{"a": "1", "b": "two words"}, pos: map[string]string{"b": `-e 'a=1 b='\''two words'\'''`}}},
		{name: "later -e wins", args: []string{"level=one", "@" + file, "level=three"},
			want: want{vars: map[string]string{"level": "three", "ETCD_DATA_DIR": "/data/etcd"},
				pos:   map[string]string{"level": "-e level=three", "ETCD_DATA_DIR": file + ":2"},
				files: []string{file}}},
		{name: "file after pair wins", args: []string{"level=one", "@" + file},
			want: want{vars: map[string]string{"level": "file"}, files: []string{file}}},
		{name: "json", args: []string{`{"a": "1", "n": 2, "l": [1, 2]}`},
			want: want{vars: map[string]string{"a": "1", "n": "2", "l": "[1, 2]"}, pos: map[string]string{"a": `-e '{"a": "1", "n": 2, "l": [1, 2]}'`}}},
		{name: "yaml flow map", args: []string{`{a: x}`}, want: want{vars: map[string]string{"a": "x"}}},
		{name: "empty argument ignored", args: []string{"", "a=1"}, want: want{vars: map[string]string{"a": "1"}}},
		{name: "interpolation against the inventory", args: []string{"p={{ base }}/x"}, want: want{vars: map[string]string{"p": "/b/x"}}},

		{name: "not key=value", args: []string{"a=1 oops"}, err: `-e 'a=1 oops': "oops" is not key=value`},
		{name: "empty key", args: []string{"=1"}, err: `-e =1: "=1" is not key=value`},
		{name: "path without @", args: []string{file}, err: "-e " + file + ": to read variables from a file, write -e @" + file},
		{name: "relative path without @", args: []string{"./vars.yml"}, err: "-e ./vars.yml: to read variables from a file, write -e @./vars.yml"},
		{name: "missing file", args: []string{"@" + dir + "/nope.yml"}, err: "-e @" + dir + "/nope.yml: extra vars: open " + dir + "/nope.yml: no such file"},
		{name: "vault file", args: []string{"@" + vault}, err: "-e @" + vault + ": " + vault + ":1: encrypted with ansible-vault"},
		{name: "file not a map", args: []string{"@" + list}, err: "-e @" + list + ": " + list + ":1: a vars file must be a map"},
		{name: "json list", args: []string{`["a"]`}, err: `-e '["a"]': extra vars must be a map like {"name": "value"}, got a list`},
		{name: "bad json", args: []string{`{"a": 1`}, err: `-e '{"a": 1': invalid YAML`},
		{name: "unclosed quote", args: []string{"a='x"}, err: `-e 'a='\''x': no closing quotation`},
		{name: "just @", args: []string{"@"}, err: "-e @: no file name after @"},
	}
	inv := writeFile(t, dir, "hosts", "[etcd]\n10.0.0.1\n[all:vars]\nlevel=inventory\nbase=/b\n")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			extra, err := ParseExtraVars(tc.args)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("err\n  %v\nwant prefix\n  %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			in, err := LoadWithVars(inv, extra)
			if err != nil {
				t.Fatal(err)
			}
			h := in.Hosts[0]
			for k, v := range tc.want.vars {
				if in.Vars[k] != v || h.Vars[k] != v {
					t.Errorf("%s = %q (host %q), want %q", k, in.Vars[k], h.Vars[k], v)
				}
			}
			for k, p := range tc.want.pos {
				if got := h.VarPos[k].String(); got != p {
					t.Errorf("%s from %q, want %q", k, got, p)
				}
			}
			if !reflect.DeepEqual(in.VarFiles, tc.want.files) {
				t.Errorf("VarFiles = %v, want %v", in.VarFiles, tc.want.files)
			}
		})
	}
}

// A bad value given with -e is reported at the argument.
func TestExtraVarsErrorNamesArgument(t *testing.T) {
	extra, err := ParseExtraVars([]string{"ansible_port=ssh"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadWithVars("testdata/ini/even.ini", extra)
	if err == nil || !strings.HasPrefix(err.Error(), "-e ansible_port=ssh: ansible_port of host 10.0.0.1 must be a port number") || !errors.Is(err, ErrBadVar) {
		t.Errorf("err = %v", err)
	}
}

// -e wins over config.yml in a cluster dir, and the old file-list API still works.
func TestLoadClusterWithVars(t *testing.T) {
	dir := NewClusterDir("testdata/kubeasz", "k8s-01")
	extra, err := ParseExtraVars([]string{"@testdata/vars/extra.yml", "ETCD_DATA_DIR=/srv/etcd level=cli"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := LoadClusterWithVars(dir, extra)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Vars["ETCD_DATA_DIR"] != "/srv/etcd" || inv.Vars["level"] != "cli" || inv.Vars["from_extra"] != "/etc/kubeasz/x" {
		t.Errorf("vars %q %q %q", inv.Vars["ETCD_DATA_DIR"], inv.Vars["level"], inv.Vars["from_extra"])
	}
	if want := []string{dir.Config(), "testdata/vars/extra.yml"}; !reflect.DeepEqual(inv.VarFiles, want) {
		t.Errorf("VarFiles = %v", inv.VarFiles)
	}
	if got := extra.Args(); !reflect.DeepEqual(got, []string{"@testdata/vars/extra.yml", "ETCD_DATA_DIR=/srv/etcd level=cli"}) {
		t.Errorf("Args = %q", got)
	}
	if _, err := os.Stat(dir.Config()); err != nil {
		t.Fatal(err)
	}
}
