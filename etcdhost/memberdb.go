package etcdhost

// A member's own data, read where it lies: <data-dir>/member/snap/db, the
// bbolt file etcd keeps its keys in, read with the host's own etcd tool
// (`snapshot status`) so that none of it crosses the network. When the
// majority is lost this is what tells which member holds the newest writes.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/transport"
)

// MemberDBTimeout bounds one `snapshot status`: it reads the whole db (a
// hash of every bucket), and a db some process still holds open would make
// it wait for the file lock forever.
const MemberDBTimeout = 120 * time.Second

// MemberDB is what one member's data dir holds, read on its host.
type MemberDB struct {
	Host string `json:"host"`
	Path string `json:"path"`
	// Active is `systemctl is-active etcd.service` when it was read.
	Active string `json:"active"`
	// Running is true when etcd runs (or starts, or restarts) there: its db
	// was not read; Revision and Size are then the member's own answer
	// through its API, when it answered.
	Running bool `json:"running"`
	// Missing is true when there is no db file: nothing to copy, whatever a
	// running etcd (holding a file moved or deleted under it) answers.
	Missing bool `json:"missing,omitempty"`
	// Readable is true when the db was read (by the tool, or the API).
	Readable bool   `json:"readable"`
	Size     int64  `json:"size"`
	Revision int64  `json:"revision"`
	Hash     uint64 `json:"hash,omitempty"`
	// TotalKeys is the tool's totalKey: every key version kept in the db.
	TotalKeys int64 `json:"total_keys,omitempty"`
	// ReadBy says how it was read ("etcdutl 3.6.16 snapshot status", "its API").
	ReadBy string `json:"read_by,omitempty"`
	// Error says why it could not be read: the tool's own message for a
	// damaged db, no db, etcd running and not answering.
	Error string `json:"error,omitempty"`
}

// Usable is true when the db can be a restore's source.
func (m *MemberDB) Usable() bool { return m.Readable && m.Error == "" }

// memberDBPath is where etcd keeps its backend in a data dir.
func memberDBPath(f *EtcdFacts) string { return f.Config.DataDir + "/member/snap/db" }

// snapshotStatusTool is the host's command that reads a db file: etcdutl
// where present (3.5+; the only one in 3.6), else etcdctl before 3.6.
func snapshotStatusTool(f *EtcdFacts) (cmd, label string, err error) {
	if f.Etcdutl != "" {
		return transport.Quote(f.Etcdutl), "etcdutl " + f.EtcdutlVersion, nil
	}
	if f.Etcdctl != "" && !versionAtLeast(f.EtcdctlVersion, 3, 6) {
		return "env ETCDCTL_API=3 " + transport.Quote(f.Etcdctl), "etcdctl " + f.EtcdctlVersion, nil
	}
	if f.Etcdctl != "" {
		return "", "", fmt.Errorf("etcdctl %s has no `snapshot status` (moved to etcdutl in 3.6) and there is no etcdutl in bin_dir or PATH", f.EtcdctlVersion)
	}
	return "", "", fmt.Errorf("neither etcdutl nor etcdctl was found in bin_dir or PATH")
}

// MemberDBScript reads the db, read-only: it asks systemd first and reads
// nothing while etcd runs (a running etcd holds the file locked: the tool
// would wait for it, and the file changes under it); an empty file is not
// handed to the tool (bbolt would try to initialise it).
func MemberDBScript(f *EtcdFacts, tool string, timeout time.Duration) string {
	q := transport.Quote
	return fmt.Sprintf(`db=%s
echo @@active; a=$(systemctl is-active etcd.service 2>/dev/null); echo "$a"
echo @@size
if ! stat -c %%s -- "$db" 2>&1; then echo @@nodb; exit 0; fi
case "$a" in inactive|failed|unknown|"") ;; *) echo @@running; exit 0 ;; esac
[ -s "$db" ] || { echo @@empty; exit 0; }
echo @@status
if out=$(timeout -k 5 %d %s snapshot status "$db" -w json 2>&1); then printf '%%s\n' "$out"; else rc=$?; printf '%%s\n' "$out" | head -n 4; echo "exit $rc"; echo @@bad; fi
`, q(memberDBPath(f)), int(timeout.Seconds()), tool)
}

// snapshotStatusJSON is `snapshot status -w json` (etcdctl 3.4, etcdutl 3.5+).
type snapshotStatusJSON struct {
	Hash      uint64 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int64  `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
}

// ParseMemberDB reads MemberDBScript's output.
func ParseMemberDB(out string, m *MemberDB, label string) {
	s := Sections(out)
	m.Active = strings.TrimSpace(s["active"])
	_, running := s["running"]
	if _, none := s["nodb"]; none {
		m.Running = running || m.Active != "inactive" && m.Active != "failed" && m.Active != "unknown" && m.Active != ""
		m.Missing = true
		m.Error = "no db: " + strings.TrimSpace(s["size"])
		return
	}
	// The file's size (stat takes no lock): what a copy moves and needs room for.
	m.Size, _ = strconv.ParseInt(strings.TrimSpace(s["size"]), 10, 64)
	if running {
		m.Running = true
		m.Error = "etcd is " + m.Active + " here: its db is not read while etcd holds it"
		return
	}
	if _, empty := s["empty"]; empty {
		m.Error = "the db is an empty file"
		return
	}
	st := strings.TrimSpace(s["status"])
	if _, bad := s["bad"]; bad {
		m.Error = fmt.Sprintf("damaged: %s snapshot status failed: %s", label, toolError(st))
		if strings.HasSuffix(st, "exit 124") || strings.HasSuffix(st, "exit 137") {
			m.Error = fmt.Sprintf("%s snapshot status did not finish within %v (is the db held open by an etcd systemd does not know of?)", label, MemberDBTimeout)
		}
		return
	}
	var j snapshotStatusJSON
	// etcdutl may log before the JSON: the JSON is the last line.
	if err := json.Unmarshal([]byte(LastLine(st)), &j); err != nil {
		m.Error = fmt.Sprintf("%s snapshot status printed %q: %v", label, oneLineText(st), err)
		return
	}
	// bbolt reads a file cut short without a word as long as the pages it
	// visits are there (etcdutl 3.6 does; etcdctl 3.4 dies of SIGBUS):
	// the db's own size, from its meta page, says what is missing.
	if j.TotalSize > m.Size {
		m.Error = fmt.Sprintf("damaged: the file is %d bytes, its db says %d (%s snapshot status): cut short", m.Size, j.TotalSize, label)
		return
	}
	m.Readable, m.ReadBy = true, label+" snapshot status"
	m.Revision, m.Hash, m.TotalKeys = j.Revision, j.Hash, j.TotalKey
}

// toolError keeps what a tool said that names the damage: a Go panic's
// first lines ("unexpected fault address", "[signal SIGBUS ...]"), or its
// "Error: ..." line, and the exit status.
func toolError(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "goroutine ") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "; ")
}

// ReadMemberDB reads one member's db on its host (see MemberDBScript). It
// never fails: what could not be read is in Error.
func ReadMemberDB(ctx context.Context, conn transport.Conn, f *EtcdFacts) MemberDB {
	m := MemberDB{Host: f.Host, Path: memberDBPath(f)}
	tool, label, err := snapshotStatusTool(f)
	if err != nil {
		m.Error = err.Error()
		return m
	}
	res, err := conn.Run(ctx, MemberDBScript(f, tool, MemberDBTimeout))
	if err != nil {
		m.Error = err.Error()
		return m
	}
	ParseMemberDB(string(res.Stdout), &m, label)
	return m
}

// FromAPI fills a running member's reading from its own answer (its
// `endpoint status`: the revision it has applied, its db size).
func (m *MemberDB) FromAPI(st MemberStatus) {
	if m.Missing {
		return
	}
	if st.Error != "" {
		m.Error = fmt.Sprintf("etcd is %s here and does not answer: %s", m.Active, st.Error)
		return
	}
	m.Readable, m.Error, m.ReadBy = true, "", "its API (etcd runs; the db is copied once it is stopped)"
	m.Revision = st.Revision
	if m.Size == 0 {
		m.Size = st.DBSize
	}
}

// QueryMemberData asks a running member for its own `endpoint status`
// alone: without a quorum etcd 3.6 still answers it (with "no leader" among
// its errors) but not `member list`, which QueryMember also asks.
func QueryMemberData(ctx context.Context, conn transport.Conn, f *EtcdFacts) MemberStatus {
	c := ClientFor(f)
	ms := MemberStatus{Host: f.Host, Endpoint: c.Endpoint}
	if f.Etcdctl == "" {
		ms.Error = "no etcdctl in bin_dir or PATH to ask it"
		return ms
	}
	res, err := conn.Run(ctx, LeaderStatusCommand(c))
	switch {
	case err != nil:
		ms.Error = err.Error()
	case res.ExitCode != 0:
		ms.Error = LastLine(string(res.Stderr))
		if ms.Error == "" {
			ms.Error = fmt.Sprintf("etcdctl exited %d", res.ExitCode)
		}
	default:
		var sj statusJSON
		if err := json.Unmarshal(res.Stdout, &sj); err != nil || len(sj) == 0 {
			ms.Error = fmt.Sprintf("unreadable endpoint status from etcdctl: %v", err)
			break
		}
		s := sj[0].Status
		ms.MemberID, ms.ClusterID, ms.Leader, ms.Revision = s.Header.MemberID, s.Header.ClusterID, s.Leader, s.Header.Revision
		ms.Version, ms.DBSize, ms.RaftIndex, ms.RaftTerm = s.Version, s.DBSize, s.RaftIndex, s.RaftTerm
	}
	return ms
}
