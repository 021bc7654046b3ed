package etcdhost

import (
	"encoding/json"
	"fmt"
)

// hexID prints a member or cluster ID as etcdctl's tables do; JSON readers
// would lose precision on a uint64 above 2^53 anyway.
func hexID(id uint64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%x", id)
}

// MarshalJSON writes a member's status in ezrestore's output vocabulary:
// snake_case names, IDs as hex strings, an error field when it could not be read.
func (m MemberStatus) MarshalJSON() ([]byte, error) {
	type listed struct {
		ID       string   `json:"id"`
		Name     string   `json:"name"`
		PeerURLs []string `json:"peer_urls"`
	}
	members := make([]listed, len(m.Members))
	for i, l := range m.Members {
		members[i] = listed{ID: hexID(l.ID), Name: l.Name, PeerURLs: l.PeerURLs}
	}
	return json.Marshal(struct {
		Host      string   `json:"host"`
		Endpoint  string   `json:"endpoint"`
		Error     string   `json:"error,omitempty"`
		Name      string   `json:"name,omitempty"`
		MemberID  string   `json:"member_id,omitempty"`
		ClusterID string   `json:"cluster_id,omitempty"`
		Leader    string   `json:"leader_id,omitempty"`
		IsLeader  bool     `json:"is_leader"`
		Version   string   `json:"version,omitempty"`
		DBSize    int64    `json:"db_size,omitempty"`
		RaftTerm  uint64   `json:"raft_term,omitempty"`
		RaftIndex uint64   `json:"raft_index,omitempty"`
		Revision  int64    `json:"revision,omitempty"`
		Members   []listed `json:"members,omitempty"`
	}{m.Host, m.Endpoint, m.Error, m.Name(), hexID(m.MemberID), hexID(m.ClusterID), hexID(m.Leader), m.IsLeader(),
		m.Version, m.DBSize, m.RaftTerm, m.RaftIndex, m.Revision, members})
}
