package etcdhost

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// Hosts is how this package reaches hosts: one connection per host, or why
// there is none (the engine's Env provides it).
type Hosts interface {
	Conn(host string) (transport.Conn, error)
}

// ReadStatus asks every member at once (up to forks) for its own view,
// through its host's etcdctl; facts says how to reach each member's etcd.
// It is the one status reader: the restore's health step, `status` and
// `backup` all judge members by what it returns.
func ReadStatus(ctx context.Context, hosts Hosts, forks int, members []inventory.EtcdMember, facts func(host string) (*EtcdFacts, error)) []MemberStatus {
	out := make([]MemberStatus, len(members))
	fanout.Each(ctx, len(members), forks, func(ctx context.Context, i int) error {
		m := members[i]
		out[i] = MemberStatus{Host: m.Host.Name, Endpoint: m.ClientURL}
		conn, err := hosts.Conn(m.Host.Name)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		f, err := facts(m.Host.Name)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		qctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		out[i] = QueryMember(qctx, conn, m.Host.Name, ClientFor(f))
		return nil
	})
	for i := range out { // not started: cancelled
		if out[i].Host == "" {
			out[i] = MemberStatus{Host: members[i].Host.Name, Endpoint: members[i].ClientURL, Error: "not asked: " + context.Cause(ctx).Error()}
		}
	}
	return out
}

// ClusterStatus is the health check on its own (`ezrestore status`): it reads
// each member's unit, read-only and all at once, then asks every member for
// its own view. A unit that cannot be read is that member's error.
func ClusterStatus(ctx context.Context, hosts Hosts, forks int, members []inventory.EtcdMember) []MemberStatus {
	gathered := make([]*EtcdFacts, len(members))
	errs := fanout.Each(ctx, len(members), forks, func(ctx context.Context, i int) error {
		m := members[i]
		conn, err := hosts.Conn(m.Host.Name)
		if err != nil {
			return err
		}
		f, err := GatherEtcd(ctx, conn, m.Host)
		if err != nil {
			return fmt.Errorf("reading the etcd unit: %w", err)
		}
		gathered[i] = f
		return nil
	})
	facts := make(map[string]*EtcdFacts, len(members))
	gatherErr := make(map[string]error, len(members))
	for i, m := range members {
		facts[m.Host.Name], gatherErr[m.Host.Name] = gathered[i], errs[i]
	}
	return ReadStatus(ctx, hosts, forks, members, func(host string) (*EtcdFacts, error) {
		if err := gatherErr[host]; err != nil {
			return nil, err
		}
		return facts[host], nil
	})
}

// LeaderOf is the host whose member the answering members agree leads, or ""
// with the reason when there is none (no answers, no leader, disagreement).
func LeaderOf(st []MemberStatus) (string, string) {
	byID := map[uint64]string{}
	for _, s := range st {
		if s.Error == "" && s.MemberID != 0 {
			byID[s.MemberID] = s.Host
		}
	}
	var leader uint64
	answered := 0
	for _, s := range st {
		if s.Error != "" {
			continue
		}
		answered++
		if s.Leader == 0 {
			continue
		}
		if leader != 0 && s.Leader != leader {
			return "", "members disagree on the leader"
		}
		leader = s.Leader
	}
	switch {
	case answered == 0:
		return "", "no member answered"
	case leader == 0:
		return "", "no member names a leader"
	}
	h, ok := byID[leader]
	if !ok {
		return "", fmt.Sprintf("the leader %x did not answer itself", leader)
	}
	return h, ""
}

// StopOrder splits hosts into the followers (stopped first, together) and the
// leader (stopped last). With no leader known every host is in the first group.
func StopOrder(hosts []string, leader string) (first []string, last string) {
	for _, h := range hosts {
		if h == leader {
			last = h
			continue
		}
		first = append(first, h)
	}
	return first, last
}

// leaderStatusCommand asks one member for its own `endpoint status`, briefly.
func LeaderStatusCommand(c EtcdClient) string {
	return c.Cmd("--dial-timeout=1s", "--command-timeout=2s", "-w", "json", "endpoint", "status")
}

// parseLeaderStatus reads leaderStatusCommand's output into ms: the member,
// its cluster and whom it follows (or an Error).
func ParseLeaderStatus(out []byte, ms *MemberStatus) {
	var sj statusJSON
	if err := json.Unmarshal(out, &sj); err != nil || len(sj) == 0 {
		ms.Error = fmt.Sprintf("unreadable endpoint status from etcdctl: %v", err)
		return
	}
	s := sj[0].Status
	ms.MemberID, ms.ClusterID, ms.Leader = s.Header.MemberID, s.Header.ClusterID, s.Leader
}
