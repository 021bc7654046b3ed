package etcdhost

import (
	"strings"
	"testing"
)

// The outputs below are MemberDBScript's on the lab (etcdctl 3.4.23), by case.
func TestParseMemberDB(t *testing.T) {
	cases := []struct {
		name, out         string
		running, readable bool
		rev, size         int64
		errHas            string
	}{
		{name: "running", out: "@@active\nactive\n@@size\n16777216\n@@running\n", running: true, size: 16777216, errHas: "etcd is active here"},
		{name: "restarting", out: "@@active\nactivating\n@@size\n20480\n@@running\n", running: true, size: 20480, errHas: "etcd is activating here"},
		{name: "running without a db", out: "@@active\nactive\n@@size\nstat: cannot statx '/var/lib/etcd/member/snap/db': No such file or directory\n@@nodb\n", running: true, errHas: "no db"},
		{name: "no db", out: "@@active\ninactive\n@@size\nstat: cannot statx '/var/lib/etcd/member/snap/db': No such file or directory\n@@nodb\n",
			errHas: "no db: stat: cannot statx"},
		{name: "empty", out: "@@active\nfailed\n@@size\n0\n@@empty\n", errHas: "empty file"},
		{name: "sigbus", out: "@@active\ninactive\n@@size\n12288\n@@status\nunexpected fault address 0x7f8b2282b000\nfatal error: fault\n[signal SIGBUS: bus error code=0x2 addr=0x7f8b2282b000 pc=0x8f1975]\n\nexit 2\n@@bad\n",
			size: 12288, errHas: "damaged: etcdctl 3.4.23 snapshot status failed: unexpected fault address 0x7f8b2282b000; fatal error: fault; [signal SIGBUS"},
		{name: "invalid", out: "@@active\ninactive\n@@size\n20480\n@@status\nError: invalid database\nexit 1\n@@bad\n",
			size: 20480, errHas: "damaged: etcdctl 3.4.23 snapshot status failed: Error: invalid database; exit 1"},
		{name: "timeout", out: "@@active\ninactive\n@@size\n20480\n@@status\nexit 124\n@@bad\n", size: 20480, errHas: "did not finish within"},
		{name: "ok 3.4", out: "@@active\ninactive\n@@size\n20480\n@@status\n{\"hash\":255053234,\"revision\":4,\"totalKey\":9,\"totalSize\":20480}\n",
			readable: true, rev: 4, size: 20480},
		{name: "ok with a log line first", out: "@@active\ninactive\n@@size\n24576\n@@status\n{\"level\":\"info\",\"msg\":\"x\"}\n{\"hash\":1,\"revision\":77,\"totalKey\":80,\"totalSize\":24576,\"version\":\"3.6.0\"}\n",
			readable: true, rev: 77, size: 24576},
		{name: "cut short, read by etcdutl 3.6", out: "@@active\ninactive\n@@size\n12288\n@@status\n{\"hash\":3440950411,\"revision\":2,\"totalKey\":1,\"totalSize\":24576,\"version\":\"3.6.0\"}\n",
			size: 12288, errHas: "damaged: the file is 12288 bytes, its db says 24576"},
		{name: "not json", out: "@@active\ninactive\n@@size\n20480\n@@status\nhash revision\n", size: 20480, errHas: "printed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m MemberDB
			ParseMemberDB(c.out, &m, "etcdctl 3.4.23")
			if m.Running != c.running || m.Readable != c.readable || m.Usable() != c.readable || m.Revision != c.rev || m.Size != c.size {
				t.Fatalf("got %+v", m)
			}
			if c.errHas == "" && m.Error != "" || !strings.Contains(m.Error, c.errHas) {
				t.Fatalf("error %q, want it to hold %q", m.Error, c.errHas)
			}
		})
	}
}

func TestMemberDBFromAPI(t *testing.T) {
	m := MemberDB{Active: "active", Running: true, Error: "etcd is active here", Size: 16 << 20}
	m.FromAPI(MemberStatus{Error: "context deadline exceeded"})
	if m.Usable() || !strings.Contains(m.Error, "does not answer: context deadline exceeded") {
		t.Fatalf("got %+v", m)
	}
	gone := MemberDB{Active: "active", Running: true, Missing: true, Error: "no db: stat: No such file"}
	gone.FromAPI(MemberStatus{Revision: 29})
	if gone.Usable() || gone.Revision != 0 {
		t.Fatalf("a running member without a db file is usable: %+v", gone)
	}
	// The file's size stays: the API's db size is what etcd uses of it.
	m.FromAPI(MemberStatus{Revision: 29, DBSize: 4096})
	if !m.Usable() || m.Revision != 29 || m.Size != 16<<20 {
		t.Fatalf("got %+v", m)
	}
}

func TestSnapshotStatusTool(t *testing.T) {
	cfg := &EtcdConfig{DataDir: "/var/lib/etcd"}
	for _, c := range []struct {
		f          EtcdFacts
		label, err string
	}{
		{f: EtcdFacts{Etcdutl: "/opt/kube/bin/etcdutl", EtcdutlVersion: "3.6.17", Etcdctl: "/x/etcdctl", EtcdctlVersion: "3.6.17"}, label: "etcdutl 3.6.17"},
		{f: EtcdFacts{Etcdctl: "/usr/bin/etcdctl", EtcdctlVersion: "3.4.23"}, label: "etcdctl 3.4.23"},
		{f: EtcdFacts{Etcdctl: "/usr/bin/etcdctl", EtcdctlVersion: "3.6.17"}, err: "moved to etcdutl in 3.6"},
		{f: EtcdFacts{}, err: "neither etcdutl nor etcdctl"},
	} {
		c.f.Config = cfg
		_, label, err := snapshotStatusTool(&c.f)
		if label != c.label || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: label %q err %v", c.f, label, err)
		}
	}
	s := MemberDBScript(&EtcdFacts{Config: cfg}, "'/opt/kube/bin/etcdutl'", MemberDBTimeout)
	if !strings.Contains(s, "db=/var/lib/etcd/member/snap/db\n") || !strings.Contains(s, "timeout -k 5 120 '/opt/kube/bin/etcdutl' snapshot status") || strings.Contains(s, "ETCDCTL_API") {
		t.Errorf("script:\n%s", s)
	}
}
