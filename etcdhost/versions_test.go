package etcdhost

import (
	"strings"
	"testing"
)

func TestMajorMinor(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"3.6.1", "3.6.0", true},
		{"v3.6.1", "3.6.4", true},
		{"3.6.1", "3.4.23", false},
		{"3.5.21", "3.6.1", false},
		{"4.6.0", "3.6.0", false},
		{"3.10.0", "3.1.0", false},
		{"3.6.0-rc.1", "3.6.2", true},
		{"", "3.6.0", false},
		{"3", "3.6.0", false},
		{"x.y.z", "x.y.z", false},
	}
	for _, c := range cases {
		if got := sameMinor(c.a, c.b); got != c.same {
			t.Errorf("sameMinor(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
	atLeast := []struct {
		v    string
		want bool
	}{{"3.6.0", true}, {"3.7.1", true}, {"4.0.0", true}, {"3.5.21", false}, {"2.9.0", false}, {"", false}}
	for _, c := range atLeast {
		if got := versionAtLeast(c.v, 3, 6); got != c.want {
			t.Errorf("versionAtLeast(%q, 3.6) = %v", c.v, got)
		}
	}
}

func TestVersionOutputs(t *testing.T) {
	servers := []struct{ out, want string }{
		{"etcd Version: 3.6.1\nGit SHA: abc\nGo Version: go1.24", "3.6.1"},
		{"etcd Version: 3.4.23\nGit SHA: Not provided (use ./build instead of go build)", "3.4.23"},
		{"sh: 1: /opt/kube/bin/etcd: not found", ""},
		{"", ""},
	}
	for _, c := range servers {
		if got := serverVersion(c.out); got != c.want {
			t.Errorf("serverVersion(%q) = %q, want %q", c.out, got, c.want)
		}
	}
	tools := []struct {
		sec, path, version string
		fromPath           bool
	}{
		{"/opt/kube/bin/etcdutl\nfrom:bin_dir\netcdutl version: 3.6.1\nAPI version: 3.6", "/opt/kube/bin/etcdutl", "3.6.1", false},
		{"/usr/bin/etcdctl\nfrom:path\netcdctl version: 3.4.23\nAPI version: 3.4", "/usr/bin/etcdctl", "3.4.23", true},
		{"", "", "", false},
	}
	for _, c := range tools {
		p, v, fp := toolLines(c.sec)
		if p != c.path || v != c.version || fp != c.fromPath {
			t.Errorf("toolLines(%q) = %q %q %v", c.sec, p, v, fp)
		}
	}
}

func facts36(mod func(*EtcdFacts)) *EtcdFacts {
	f := &EtcdFacts{Host: "10.0.0.3", BinDir: "/opt/kube/bin", Config: &EtcdConfig{Binary: "/opt/kube/bin/etcd"},
		ServerVersion: "3.6.1", Etcdutl: "/opt/kube/bin/etcdutl", EtcdutlVersion: "3.6.1",
		Etcdctl: "/opt/kube/bin/etcdctl", EtcdctlVersion: "3.6.1", BumpRevision: true}
	if mod != nil {
		mod(f)
	}
	return f
}

func TestVersionProblems(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*EtcdFacts)
		want []string // empty: no problem
	}{
		{name: "all 3.6"},
		{name: "patch differs", mod: func(f *EtcdFacts) { f.EtcdutlVersion = "3.6.0" }},
		{name: "Debian's etcdctl 3.4 on PATH beside etcd 3.6", mod: func(f *EtcdFacts) {
			f.Etcdutl, f.EtcdutlVersion = "", ""
			f.Etcdctl, f.EtcdctlVersion, f.EtcdctlFromPath = "/usr/bin/etcdctl", "3.4.23", true
		}, want: []string{"etcd server 3.6.1 (/opt/kube/bin/etcd)", "etcdctl 3.4.23 (/usr/bin/etcdctl, found on PATH, not in bin_dir /opt/kube/bin)",
			"member unknown", "Install etcdutl 3.6.1 into bin_dir /opt/kube/bin"}},
		{name: "etcdutl 3.5 beside etcd 3.6", mod: func(f *EtcdFacts) { f.EtcdutlVersion = "3.5.21" },
			want: []string{"restore tool is etcdutl 3.5.21 (/opt/kube/bin/etcdutl)"}},
		{name: "server version unreadable", mod: func(f *EtcdFacts) {
			f.ServerVersion, f.ServerVersionOut = "", "sh: 1: /opt/kube/bin/etcd: not found"
		}, want: []string{"`/opt/kube/bin/etcd --version`", "not found", "Fix ExecStart"}},
		{name: "tool version unreadable", mod: func(f *EtcdFacts) { f.EtcdutlVersion = "" },
			want: []string{"cannot read the version of the restore tool /opt/kube/bin/etcdutl"}},
		{name: "no tool at all is RestoreTool's to report", mod: func(f *EtcdFacts) { f.Etcdutl, f.Etcdctl = "", "" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := facts36(c.mod).VersionProblems()
			if len(c.want) == 0 {
				if len(got) > 0 {
					t.Fatalf("want no problem, got %q", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one problem, got %q", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("problem lacks %q:\n%s", w, got[0])
				}
			}
		})
	}
}

func TestPathNotes(t *testing.T) {
	if n := facts36(nil).PathNotes(); len(n) != 0 {
		t.Fatalf("tools in bin_dir need no warning: %q", n)
	}
	f := facts36(func(f *EtcdFacts) {
		f.Etcdutl, f.EtcdutlVersion, f.EtcdutlFromPath = "/usr/local/bin/etcdutl", "3.6.1", true
	})
	n := f.PathNotes()
	if len(n) != 1 || n[0] != "warning: no etcdutl in bin_dir /opt/kube/bin: using /usr/local/bin/etcdutl (etcdutl 3.6.1) from PATH" {
		t.Fatalf("notes %q", n)
	}
}

func TestBumpMismatch(t *testing.T) {
	hosts := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	all := []*EtcdFacts{facts36(nil), facts36(nil), facts36(nil)}
	if err := BumpMismatch(hosts, all); err != nil {
		t.Fatalf("all alike: %v", err)
	}
	none := func(f *EtcdFacts) { f.BumpRevision, f.EtcdutlVersion = false, "3.5.0" }
	if err := BumpMismatch(hosts, []*EtcdFacts{facts36(none), facts36(none), facts36(none)}); err != nil {
		t.Fatalf("none can, all alike: %v", err)
	}
	err := BumpMismatch(hosts, []*EtcdFacts{facts36(nil), facts36(none), facts36(nil)})
	if err == nil {
		t.Fatal("mixed members must be refused")
	}
	for _, w := range []string{"10.0.0.1 (etcdutl 3.6.1), 10.0.0.3 (etcdutl 3.6.1) can restore with --bump-revision",
		"10.0.0.2 (etcdutl 3.5.0) cannot", "into bin_dir on 10.0.0.2,", "--no-bump-revision"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q:\n%v", w, err)
		}
	}
}
