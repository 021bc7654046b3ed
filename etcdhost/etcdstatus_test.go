package etcdhost

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
)

func threeMembers() []inventory.EtcdMember {
	var ms []inventory.EtcdMember
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		ms = append(ms, inventory.EtcdMember{Host: &inventory.Host{Name: ip}, Name: "etcd-" + ip, PeerURL: "https://" + ip + ":2380"})
	}
	return ms
}

func listOf(ms []inventory.EtcdMember, ids ...uint64) []ListedMember {
	var out []ListedMember
	for i, m := range ms {
		out = append(out, ListedMember{ID: ids[i], Name: m.Name, PeerURLs: []string{m.PeerURL}})
	}
	return out
}

func healthy(ms []inventory.EtcdMember) []MemberStatus {
	ids := []uint64{0xa1, 0xb2, 0xc3}
	var out []MemberStatus
	for i, m := range ms {
		out = append(out, MemberStatus{Host: m.Host.Name, MemberID: ids[i], ClusterID: 0x77, Leader: 0xb2, Revision: 100, Members: listOf(ms, ids...)})
	}
	return out
}

func TestEvaluate(t *testing.T) {
	ms := threeMembers()
	cases := []struct {
		name    string
		mutate  func([]MemberStatus) []MemberStatus
		minRev  int64
		healthy bool
		summary string
		problem string
	}{
		{"healthy", nil, 100, true, "healthy: 3 members", ""},
		{"one member down keeps quorum but is not healthy", func(s []MemberStatus) []MemberStatus {
			s[2] = MemberStatus{Host: s[2].Host, Error: "connection refused"}
			return s
		}, 0, false, "members that cannot be reached: 10.0.0.3 (connection refused)", ""},
		{"two down is no quorum", func(s []MemberStatus) []MemberStatus {
			s[1] = MemberStatus{Host: s[1].Host, Error: "timeout"}
			s[2] = MemberStatus{Host: s[2].Host, Error: "timeout"}
			return s
		}, 0, false, "no quorum: 1 of 3 members answer, 2 needed", ""},
		// The split brain of a data dir restored once and copied everywhere:
		// the same member ID everywhere, each its own leader, one-member lists.
		{"restored once and copied", func(s []MemberStatus) []MemberStatus {
			for i := range s {
				s[i].MemberID, s[i].Leader, s[i].ClusterID = 0x8e9e05c52164694d, 0x8e9e05c52164694d, 0xcdf818194e3a8c32
				s[i].RaftIndex = uint64(10 + i)
				s[i].Members = []ListedMember{{ID: 0x8e9e05c52164694d, Name: "default", PeerURLs: []string{"http://localhost:2380"}}}
			}
			return s
		}, 0, false, "more than one leader", "report member ID 8e9e05c52164694d"},
		{"two clusters", func(s []MemberStatus) []MemberStatus {
			s[2].ClusterID, s[2].Leader = 0x99, s[2].MemberID
			return s
		}, 0, false, "more than one leader", "members disagree on cluster ID"},
		{"member list differs from inventory", func(s []MemberStatus) []MemberStatus {
			for i := range s {
				s[i].Members[0].Name = "etcd1"
			}
			return s
		}, 0, false, "members disagree with the inventory's member list", "the inventory wants"},
		{"revision below the snapshot", nil, 101, false, "revision on 10.0.0.1 is 100, below the snapshot's 101", ""},
		{"no leader yet", func(s []MemberStatus) []MemberStatus {
			for i := range s {
				s[i].Leader = 0
			}
			return s
		}, 0, false, "no leader elected yet", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := healthy(ms)
			if c.mutate != nil {
				s = c.mutate(s)
			}
			v := Evaluate(s, ms, c.minRev)
			if v.Healthy != c.healthy {
				t.Fatalf("healthy=%v, want %v: %+v", v.Healthy, c.healthy, v)
			}
			if !strings.HasPrefix(v.Summary, c.summary) {
				t.Fatalf("summary %q, want prefix %q (problems %q)", v.Summary, c.summary, v.Problems)
			}
			if c.problem != "" && !strings.Contains(strings.Join(v.Problems, "\n"), c.problem) {
				t.Fatalf("problems %q lack %q", v.Problems, c.problem)
			}
		})
	}
}

// Output of Debian's etcdctl 3.4.23 against a real one-member etcd, copied as printed.
const etcdctl34Output = `[{"Endpoint":"http://127.0.0.1:23791","Status":{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":13668033151171901709,"raftIndex":4,"raftTerm":2,"raftAppliedIndex":4,"dbSizeInUse":16384}}]

{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"raft_term":2},"members":[{"ID":13668033151171901709,"name":"n1","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23791"]}]}
`

func TestParseMemberStatus(t *testing.T) {
	var ms MemberStatus
	if err := ParseMemberStatus([]byte(etcdctl34Output), &ms); err != nil {
		t.Fatal(err)
	}
	if ms.MemberID != 13668033151171901709 || ms.ClusterID != 15118495548433857066 || !ms.IsLeader() || ms.Revision != 1 || ms.Name() != "n1" || ms.Version != "3.4.23" {
		t.Fatalf("got %+v", ms)
	}
	if err := ParseMemberStatus([]byte("Error: context deadline exceeded"), &ms); err == nil {
		t.Fatal("garbage accepted")
	}
}

// The one etcdctl command line reaches etcdctl with every word intact,
// whatever the paths and arguments hold.
func TestEtcdClientCmdWords(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "bin dir's", "etcdctl")
	if err := os.MkdirAll(filepath.Dir(tool), 0o700); err != nil {
		t.Fatal(err)
	}
	// A stand-in that only prints how it was called: this test is about the shell words.
	script := "#!/bin/sh\necho \"api=$ETCDCTL_API\"\nfor a in \"$@\"; do echo \"[$a]\"; done\n"
	if err := os.WriteFile(tool, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	c := EtcdClient{Etcdctl: tool, Endpoint: "https://127.0.0.11:2379", CACert: "/etc/kube ssl/ca.pem", Cert: "/etc/kube ssl/etcd.pem", Key: "/etc/kube ssl/etcd-key.pem"}
	line := c.Cmd("snapshot", "save", "/tmp/x;$(y)/snapshot.db")
	out, err := exec.Command("sh", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", line, err, out)
	}
	want := strings.Join([]string{"api=3",
		"[--endpoints=https://127.0.0.11:2379]",
		"[--cacert=/etc/kube ssl/ca.pem]",
		"[--cert=/etc/kube ssl/etcd.pem]",
		"[--key=/etc/kube ssl/etcd-key.pem]",
		"[snapshot]", "[save]", "[/tmp/x;$(y)/snapshot.db]"}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

// Status JSON speaks the output vocabulary: snake_case, hex IDs as etcdctl's
// tables print them (a uint64 loses precision in JSON readers), an error field.
func TestMemberStatusJSON(t *testing.T) {
	ms := MemberStatus{Host: "h1", Endpoint: "https://h1:2379", MemberID: 13668033151171901709, ClusterID: 15118495548433857066,
		Leader: 13668033151171901709, Members: []ListedMember{{ID: 13668033151171901709, Name: "n1", PeerURLs: []string{"https://h1:2380"}}}}
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"member_id":"bdae9bbc11dd390d"`, `"cluster_id":"d1cfaf999eb97a2a"`, `"is_leader":true`, `"name":"n1"`, `"peer_urls":["https://h1:2380"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	b, _ = json.Marshal(MemberStatus{Host: "h2", Endpoint: "e", Error: "connection refused"})
	if !strings.Contains(string(b), `"error":"connection refused"`) || strings.Contains(string(b), "member_id") {
		t.Errorf("an unreadable member: %s", b)
	}
}
