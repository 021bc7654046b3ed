package etcdhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// MemberStatus is one member's own view of the cluster, as its host's
// etcdctl reports it (endpoint status and member list against itself).
type MemberStatus struct {
	Host      string         `json:"host"`
	Endpoint  string         `json:"endpoint"`
	Error     string         `json:"error,omitempty"`
	MemberID  uint64         `json:"member_id,omitempty"`
	ClusterID uint64         `json:"cluster_id,omitempty"`
	Leader    uint64         `json:"leader,omitempty"`
	Version   string         `json:"version,omitempty"`
	DBSize    int64          `json:"db_size,omitempty"`
	RaftTerm  uint64         `json:"raft_term,omitempty"`
	RaftIndex uint64         `json:"raft_index,omitempty"`
	Revision  int64          `json:"revision,omitempty"`
	Members   []ListedMember `json:"members,omitempty"`

	// DBSizeInUse is the part of the db file holding live data (etcd 3.4+);
	// the rest is free pages that a defragmentation gives back.
	DBSizeInUse int64 `json:"db_size_in_use,omitempty"`
	// DBSizeQuota is the backend quota the member reports itself (etcd 3.6+; 0 before).
	DBSizeQuota int64 `json:"db_size_quota,omitempty"`
}

// IsLeader is true when the member says it is the leader itself.
func (m *MemberStatus) IsLeader() bool {
	return m.Error == "" && m.MemberID != 0 && m.MemberID == m.Leader
}

// Name is the member's name as its own member list gives it.
func (m *MemberStatus) Name() string {
	for _, l := range m.Members {
		if l.ID == m.MemberID {
			return l.Name
		}
	}
	return ""
}

// ListedMember is one entry of `etcdctl member list`.
type ListedMember struct {
	ID       uint64   `json:"ID"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
}

// EtcdClient is how to reach a member with its host's etcdctl.
type EtcdClient struct {
	Etcdctl  string
	Endpoint string
	CACert   string
	Cert     string
	Key      string
}

// ClientFor builds the etcdctl invocation for a member from its unit.
func ClientFor(f *EtcdFacts) EtcdClient {
	c := f.Config
	return EtcdClient{Etcdctl: f.Etcdctl, Endpoint: FirstURL(c.ClientURLs), CACert: c.TrustedCAFile, Cert: c.CertFile, Key: c.KeyFile}
}

// Cmd is the shell command running the host's etcdctl against this member
// with args: the one place an etcdctl command line is built.
func (c EtcdClient) Cmd(args ...string) string {
	words := []string{c.Etcdctl, "--endpoints=" + c.Endpoint}
	if strings.HasPrefix(c.Endpoint, "https://") {
		if c.CACert != "" {
			words = append(words, "--cacert="+c.CACert)
		}
		if c.Cert != "" {
			words = append(words, "--cert="+c.Cert, "--key="+c.Key)
		}
	}
	return "ETCDCTL_API=3 " + transport.QuoteAll(append(words, args...)...)
}

// StatusCommand prints endpoint status and member list as JSON.
func (c EtcdClient) StatusCommand() string {
	quick := []string{"--dial-timeout=2s", "--command-timeout=3s", "-w", "json"}
	return c.Cmd(append(quick, "endpoint", "status")...) + " && echo && " + c.Cmd(append(quick, "member", "list")...)
}

// statusJSON is etcdctl's `endpoint status -w json` output.
type statusJSON []struct {
	Endpoint string `json:"Endpoint"`
	Status   struct {
		Header struct {
			ClusterID uint64 `json:"cluster_id"`
			MemberID  uint64 `json:"member_id"`
			Revision  int64  `json:"revision"`
			RaftTerm  uint64 `json:"raft_term"`
		} `json:"header"`
		Version   string `json:"version"`
		DBSize    int64  `json:"dbSize"`
		Leader    uint64 `json:"leader"`
		RaftIndex uint64 `json:"raftIndex"`
		RaftTerm  uint64 `json:"raftTerm"`

		// dbSizeInUse since etcd 3.4, dbSizeQuota since 3.6.
		DBSizeInUse int64 `json:"dbSizeInUse"`
		DBSizeQuota int64 `json:"dbSizeQuota"`
	} `json:"Status"`
}

type memberListJSON struct {
	Members []ListedMember `json:"members"`
}

// QueryMember asks one member for its status through its host's etcdctl.
func QueryMember(ctx context.Context, conn transport.Conn, host string, c EtcdClient) MemberStatus {
	ms := MemberStatus{Host: host, Endpoint: c.Endpoint}
	res, err := conn.Run(ctx, c.StatusCommand())
	if err != nil {
		ms.Error = err.Error()
		return ms
	}
	if res.ExitCode != 0 {
		ms.Error = LastLine(string(res.Stderr))
		if ms.Error == "" {
			ms.Error = fmt.Sprintf("etcdctl exited %d", res.ExitCode)
		}
		return ms
	}
	if err := ParseMemberStatus(res.Stdout, &ms); err != nil {
		ms.Error = err.Error()
	}
	return ms
}

// ParseMemberStatus reads the two JSON documents Command prints.
func ParseMemberStatus(out []byte, ms *MemberStatus) error {
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var st statusJSON
	if err := dec.Decode(&st); err != nil || len(st) == 0 {
		return fmt.Errorf("unreadable endpoint status from etcdctl: %v", err)
	}
	var ml memberListJSON
	if err := dec.Decode(&ml); err != nil {
		return fmt.Errorf("unreadable member list from etcdctl: %v", err)
	}
	s := st[0].Status
	ms.MemberID, ms.ClusterID, ms.Revision = s.Header.MemberID, s.Header.ClusterID, s.Header.Revision
	ms.Leader, ms.Version, ms.DBSize, ms.RaftIndex, ms.RaftTerm = s.Leader, s.Version, s.DBSize, s.RaftIndex, s.RaftTerm
	ms.DBSizeInUse, ms.DBSizeQuota = s.DBSizeInUse, s.DBSizeQuota
	if ms.RaftTerm == 0 {
		ms.RaftTerm = s.Header.RaftTerm
	}
	ms.Members = ml.Members
	return nil
}

func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Verdict is the judgement on a set of member statuses.
type Verdict struct {
	Healthy  bool     `json:"healthy"`
	Summary  string   `json:"verdict"`
	Problems []string `json:"problems,omitempty"`
}

// Evaluate judges statuses against the members the inventory expects:
// healthy means every member answers, exactly one leader, one cluster ID,
// distinct member IDs, every member list equal to the inventory's names and
// peer URLs, and (when minRevision > 0) every revision at least minRevision.
func Evaluate(statuses []MemberStatus, want []inventory.EtcdMember, minRevision int64) Verdict {
	var problems []string
	var up []MemberStatus
	var down []string
	for _, s := range statuses {
		if s.Error != "" {
			down = append(down, fmt.Sprintf("%s (%s)", s.Host, s.Error))
		} else {
			up = append(up, s)
		}
	}
	quorum := len(want)/2 + 1
	summary := ""
	if len(up) < quorum {
		summary = fmt.Sprintf("no quorum: %d of %d members answer, %d needed", len(up), len(want), quorum)
		problems = append(problems, summary)
	}
	if len(down) > 0 {
		problems = append(problems, "members that cannot be reached: "+strings.Join(down, "; "))
	}

	byID := map[uint64][]string{}
	leaders := map[uint64][]string{}
	clusters := map[uint64][]string{}
	var selfLeaders []string
	for _, s := range up {
		byID[s.MemberID] = append(byID[s.MemberID], s.Host)
		leaders[s.Leader] = append(leaders[s.Leader], s.Host)
		clusters[s.ClusterID] = append(clusters[s.ClusterID], s.Host)
		if s.IsLeader() {
			selfLeaders = append(selfLeaders, s.Host)
		}
	}
	for id, hosts := range byID {
		if len(hosts) > 1 {
			problems = append(problems, fmt.Sprintf("hosts %s all report member ID %x: each runs a one-member cluster of its own (a data dir restored once and copied)", strings.Join(hosts, ", "), id))
		}
	}
	if len(selfLeaders) > 1 || len(leaders) > 1 {
		var parts []string
		for id, hosts := range leaders {
			parts = append(parts, fmt.Sprintf("%s follow %x", strings.Join(hosts, ","), id))
		}
		sort.Strings(parts)
		problems = append(problems, fmt.Sprintf("more than one leader: %s", strings.Join(parts, "; ")))
		if summary == "" {
			summary = "more than one leader"
		}
	} else if len(up) > 0 {
		if _, none := leaders[0]; none {
			problems = append(problems, "no leader elected yet")
		}
	}
	if len(clusters) > 1 {
		var parts []string
		for id, hosts := range clusters {
			parts = append(parts, fmt.Sprintf("%s in %x", strings.Join(hosts, ","), id))
		}
		sort.Strings(parts)
		problems = append(problems, "members disagree on cluster ID: "+strings.Join(parts, "; "))
		if summary == "" {
			summary = "members disagree on cluster ID"
		}
	}
	wantList := memberSet(want)
	for _, s := range up {
		got := listedSet(s.Members)
		if got != wantList {
			problems = append(problems, fmt.Sprintf("member list on %s is [%s], the inventory wants [%s]", s.Host, got, wantList))
			if summary == "" {
				summary = "members disagree with the inventory's member list"
			}
		}
		if minRevision > 0 && s.Revision < minRevision {
			problems = append(problems, fmt.Sprintf("revision on %s is %d, below the snapshot's %d", s.Host, s.Revision, minRevision))
		}
	}
	if summary == "" && len(down) > 0 {
		summary = "members that cannot be reached: " + strings.Join(down, "; ")
	}
	if len(problems) == 0 {
		return Verdict{Healthy: true, Summary: fmt.Sprintf("healthy: %d members, one leader, one cluster ID", len(up))}
	}
	if summary == "" {
		summary = problems[0]
	}
	return Verdict{Summary: summary, Problems: problems}
}

func memberSet(ms []inventory.EtcdMember) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Name+"="+m.PeerURL)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func listedSet(ls []ListedMember) string {
	var parts []string
	for _, m := range ls {
		parts = append(parts, m.Name+"="+strings.Join(m.PeerURLs, "|"))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
