package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseINI checks that no input makes the INI parser, host-pattern
// expansion, resolution or member listing panic.
func FuzzParseINI(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.ini")
	more, _ := filepath.Glob("testdata/kubeasz/clusters/*/hosts")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		"[etcd]\nn[1:3] a='b' #c\n[x:children]\netcd\n[x:vars]\nv=\"{{ w }}\"\nw={{ v }}\n",
		"[etcd]\n[2001:db8::1]:22\n[01:03]\n[a:c].x\n",
		"[a:vars]\n[a]\n[a:children]\na\n",
		"[etcd]\nh ansible_host='{{ x | default(\"y\") }}' ansible_port=0\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		s := newSource("fuzz")
		if err := parseINI(s, data); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		inv, err := resolve(s, nil, "c")
		if err != nil {
			return
		}
		_, _ = inv.EtcdMembers()
		_ = inv.Masters()
		_ = inv.Nodes()
	})
}

// FuzzParseYAML does the same for YAML inventories and vars files.
func FuzzParseYAML(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.y*ml")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = loadVarsFile("fuzz", data)
		s := newSource("fuzz")
		if err := parseYAMLInventory(s, data); err != nil {
			return
		}
		if inv, err := resolve(s, nil, ""); err == nil {
			_, _ = inv.EtcdMembers()
		}
	})
}

// FuzzParseExtraVars checks that no -e argument makes the parser panic and
// that every error names the argument.
func FuzzParseExtraVars(f *testing.F) {
	for _, s := range []string{"a=1 b='x y'", `{"a": [1, {"b": 2}]}`, "a={{ b | d('c d') }}", `a=\ b\=c`, "[1]", "@", "{a: *x}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		if len(arg) > 0 && arg[0] == '@' {
			return // names a file
		}
		if _, err := ParseExtraVars([]string{arg}); err != nil && !strings.HasPrefix(err.Error(), extraLabel(arg)) {
			t.Fatalf("error %q does not start with %q", err, extraLabel(arg))
		}
	})
}
