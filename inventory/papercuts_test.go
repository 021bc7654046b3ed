package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An INI inventory that Ansible reads and we used to refuse, or the reverse.
func TestINIPapercuts(t *testing.T) {
	cases := []struct {
		name, inv string
		err       string   // want this error (after "file:"), or
		warnings  []string // these warnings (after "file:")
		etcd      []string
	}{
		{
			name:     "child group defined nowhere",
			inv:      "[etcd]\n10.0.0.1\n[k8s:children]\netcd\nmissing_group\n[missing_group:vars]\nx=1\n",
			warnings: []string{"5: group missing_group named under [k8s:children] is defined nowhere; it has no hosts"},
			etcd:     []string{"10.0.0.1"},
		},
		{
			name:     "etcd made of a real and an undefined group",
			inv:      "[etcd:children]\netcd_a\netcd_b\n[etcd_a]\n10.0.0.1\n",
			warnings: []string{"3: group etcd_b named under [etcd:children] is defined nowhere; it has no hosts"},
			etcd:     []string{"10.0.0.1"},
		},
		{
			name:     "child defined later in the file is no warning",
			inv:      "[etcd:children]\nnodes\n[nodes]\n10.0.0.1\n",
			warnings: nil,
			etcd:     []string{"10.0.0.1"},
		},
		{
			name: "etcd only of an undefined group",
			inv:  "[etcd:children]\nnope\n[kube_node]\n10.0.0.1\n",
			err:  "1: group etcd has no hosts",
		},
		{
			name: "vars of a group nothing names",
			inv:  "[etcd]\n10.0.0.1\n[lonely:vars]\nx=1\n",
			err:  "3: [lonely:vars] for a group that is defined nowhere",
		},
		{
			name: "header without ]",
			inv:  "[etcd]\n10.0.0.1\n[kube_node\n10.0.0.2\n",
			err:  "3: section header [kube_node has no closing ]: write [kube_node]",
		},
		{
			name: "children header without ] and a comment",
			inv:  "[etcd]\n10.0.0.1\n\n[k8s:children # the cluster\n",
			err:  "4: section header [k8s:children has no closing ]: write [k8s:children]",
		},
		{
			name: "an IPv6 host with a port is still a host",
			inv:  "[etcd]\n[2001:db8::1]:2222\n",
			etcd: []string{"2001:db8::1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "hosts", tc.inv)
			inv, err := Load(path)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), path+":"+tc.err) {
					t.Fatalf("err = %v, want %s:%s", err, path, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(inv.EtcdHosts()); strings.Join(got, ",") != strings.Join(tc.etcd, ",") {
				t.Errorf("etcd = %v, want %v", got, tc.etcd)
			}
			var want []string
			for _, w := range tc.warnings {
				want = append(want, path+":"+w)
			}
			if strings.Join(inv.Warnings, "\n") != strings.Join(want, "\n") {
				t.Errorf("warnings\n  %q\nwant\n  %q", inv.Warnings, want)
			}
		})
	}
}

// yaml.v3 counts a parser error's line from 0 and a scanner error's from 1;
// the reported line is the one an editor shows, checked here by hand.
func TestYAMLErrorLines(t *testing.T) {
	cases := []struct {
		doc  string
		line int
		msg  string
	}{
		// The flow list opens on line 2 and is never closed.
		{"a: 1\nb: [1, 2\nc: 3\n", 2, "did not find expected ',' or ']'"},
		{"a: 1\nb: {x: 1\n", 2, "did not find expected ',' or '}'"},
		// A list item where a key of the top map is expected: line 2.
		{"a: 1\n- b\n", 2, "did not find expected key"},
		// " c: 2" on line 4 is indented as no map is.
		{"x: 0\na:\n  b: 1\n c: 2\n", 4, "did not find expected key"},
		// A map that starts on line 2 and breaks on line 4 is reported where it starts.
		{"top: 1\nm:\n  a: [1]\n  - x\n", 3, "did not find expected key"},
		// Scanner errors: already counted from 1.
		{"a: 1\n\tb: 2\n", 2, "found a tab character that violates indentation"},
		{"a: 1\nb: 2\n  c: 3\n", 3, "mapping values are not allowed in this context"},
		{"a: 1\nb: \"\\q\"\n", 2, "found unknown escape character"},
		// On the first line yaml.v3 prints no line at all.
		{"a: b: c\n", 1, "mapping values are not allowed in this context"},
		{"[1, 2", 1, "did not find expected ',' or ']'"},
		// The list is still open at the end of the file: its last line.
		{"[1, 2\n", 1, "did not find expected ',' or ']'"},
	}
	for _, tc := range cases {
		path := writeFile(t, t.TempDir(), "vars.yml", tc.doc)
		_, err := loadVarsFile(path, []byte(tc.doc))
		var ie *Error
		if !errors.As(err, &ie) || ie.Line != tc.line || !strings.Contains(ie.Msg, tc.msg) || !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: err = %v, want line %d: %s", tc.doc, err, tc.line, tc.msg)
		}
	}
	// An error with no place in the file keeps line 0.
	_, err := loadVarsFile("v.yml", []byte("a: *nope\n"))
	var ie *Error
	if !errors.As(err, &ie) || ie.Line != 0 || !strings.Contains(ie.Msg, "unknown anchor") {
		t.Errorf("unknown anchor: %v", err)
	}
}
