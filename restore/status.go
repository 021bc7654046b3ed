package restore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// StatusReport is the health check the restore uses, on its own.
type StatusReport struct {
	Cluster string `json:"cluster"`
	// The verdict's fields (healthy, verdict, problems) sit at the top level.
	etcdhost.Verdict
	Members []etcdhost.MemberStatus `json:"members"`
	// Warnings are the inventory's (an even member count, vault files
	// skipped, SSH options not supported), as plan and inventory show them.
	Warnings []string `json:"warnings,omitempty"`
	// CertExpiry is the etcd certificate that expires first, on any member.
	CertExpiry *etcdhost.CertExpiry `json:"earliest_cert_expiry,omitempty"`

	// Space is each etcd host's account of what earlier runs left and the
	// room on its filesystems; EtcdSpace is etcd's own (db, quota, alarms).
	Space     []HostSpaceReport         `json:"space,omitempty"`
	EtcdSpace *etcdhost.EtcdSpaceReport `json:"etcd_space,omitempty"`

	// MemberData is each member's data revision, read on its host, when
	// there is no quorum; Suggest the command that restores from the
	// freshest member when one is ahead of the newest backup (membersource.go).
	MemberData *MemberSource `json:"member_data,omitempty"`
	Suggest    string        `json:"suggest,omitempty"`
}

// Status connects to the etcd hosts, reads their units (read-only) and asks
// every member for its own view of the cluster.
func Status(ctx context.Context, target cluster.Selector, forks int) (*StatusReport, error) {
	cl, err := cluster.OpenEtcd(target)
	if err != nil {
		return nil, err
	}
	members := cl.Members
	pool := cl.Connect(ctx, cl.Inventory.EtcdHosts(), forks)
	defer pool.Close()
	env := &orchestrator.Env{Cluster: cl.Name, Inventory: cl.Inventory, Conns: pool, Unreachable: pool.Failed(), Forks: forks}
	st := etcdhost.ClusterStatus(ctx, env, env.Forks, members)
	rep := &StatusReport{Cluster: cl.Name, Members: st, Verdict: etcdhost.Evaluate(st, members, 0),
		CertExpiry: etcdhost.ReadEarliestExpiry(ctx, env, env.Forks, members), Warnings: cl.Inventory.Warnings}
	rep.addSpace(ctx, env, cl.RecordDir, members)
	if workingQuorum(st, len(members)) == "" {
		rep.addMemberData(ctx, env, cl.BackupDir, target, members)
	}
	return rep, nil
}

// WriteTable prints one row per member and the verdict.
func (r *StatusReport) WriteTable(w io.Writer) {
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tMEMBER ID\tNAME\tVERSION\tDB SIZE\tLEADER\tRAFT TERM\tRAFT INDEX\tREVISION\tERRORS")
	for _, m := range r.Members {
		if m.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", m.Endpoint, oneLine(m.Error))
			continue
		}
		leader := "no"
		if m.IsLeader() {
			leader = "yes"
		}
		fmt.Fprintf(tw, "%s\t%x\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", m.Endpoint, m.MemberID, m.Name(), m.Version,
			bytesize.Human(m.DBSize), leader, m.RaftTerm, m.RaftIndex, m.Revision)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", r.Verdict.Summary)
	for _, p := range r.Verdict.Problems {
		if p != r.Verdict.Summary {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	r.writeMemberData(w)
	r.writeCertExpiry(w)
	r.writeSpace(w)
}

// writeCertExpiry says which certificate expires first, where and when.
func (r *StatusReport) writeCertExpiry(w io.Writer) {
	if r.CertExpiry != nil {
		fmt.Fprintf(w, "Earliest certificate expiry: %s\n", r.CertExpiry.Text(time.Now()))
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// HostSpaceReport is one etcd host's space account: free space per
// filesystem, and what earlier runs left there, per run with its record.
type HostSpaceReport struct {
	*etcdhost.HostSpace
	Runs []HostRun `json:"runs,omitempty"`
}

// HostRun is what one run left on one host.
type HostRun struct {
	etcdhost.RunSpace
	Runs  []string `json:"run_ids,omitempty"`
	State string   `json:"state"`
	// Time is when the run started, by its record; without one, the newest mtime.
	Time time.Time `json:"time"`
}

// addSpace reads, read-only and all hosts at once, each etcd host's space
// account and etcd's active alarms, and judges etcd's own space.
func (r *StatusReport) addSpace(ctx context.Context, env *orchestrator.Env, recordDir string, members []inventory.EtcdMember) {
	facts, spaces, errs := gatherSpace(ctx, env, members, true)
	runs, runErr := ReadRuns(recordDir)
	groups := GroupLeftovers(spaces, runs)
	byToken := map[string]*RunGroup{}
	for _, g := range groups {
		byToken[g.Token] = g
	}
	var alarms []etcdhost.Alarm
	factsOf := map[string]*etcdhost.EtcdFacts{}
	for i, m := range members {
		hs := spaces[i]
		if hs == nil {
			hs = &etcdhost.HostSpace{Host: m.Host.Name}
			if errs[i] != nil {
				hs.Error = errs[i].Error()
			}
		}
		if runErr != nil && hs.Error == "" {
			hs.Error = runErr.Error()
		}
		hr := HostSpaceReport{HostSpace: hs}
		for _, rs := range hs.ByRun() {
			h := HostRun{RunSpace: rs, State: "not a name ezrestore makes; left alone", Time: rs.Newest}
			if g := byToken[rs.Token]; g != nil {
				h.Runs, h.State, h.Time = g.Runs, g.State(), g.Time
			}
			hr.Runs = append(hr.Runs, h)
		}
		r.Space = append(r.Space, hr)
		alarms = append(alarms, hs.Alarms...)
		factsOf[m.Host.Name] = facts[i]
	}
	r.EtcdSpace = etcdhost.JudgeEtcdSpace(r.Members, func(h string) *etcdhost.EtcdFacts { return factsOf[h] }, alarms)
}

// writeSpace prints the space account per host, then etcd's own space with
// its verdict and the commands that fix it.
func (r *StatusReport) writeSpace(w io.Writer) {
	if len(r.Space) > 0 {
		fmt.Fprintln(w, "\nSpace on the etcd hosts:")
	}
	for _, hs := range r.Space {
		if hs.Error != "" {
			fmt.Fprintf(w, "  %s: not measured: %s\n", hs.Host, oneLine(hs.Error))
			continue
		}
		fmt.Fprintf(w, "  %s:\n", hs.Host)
		for _, l := range hs.FreeLines() {
			fmt.Fprintf(w, "    free: %s\n", l)
		}
		if len(hs.Runs) == 0 {
			fmt.Fprintln(w, "    nothing left by earlier runs")
			continue
		}
		fmt.Fprintf(w, "    earlier runs hold %s in %d dirs (`ezrestore prune` frees them):\n", bytesize.Human(hs.Total()), len(hs.Leftovers))
		for _, run := range hs.Runs {
			label := run.Token
			if label == "" {
				label = "(other)"
			}
			ids := "no run record"
			if len(run.Runs) > 0 {
				ids = "run " + strings.Join(run.Runs, ", ")
			}
			fmt.Fprintf(w, "      %s (%s, %s), %s, %s\n", label, ids, run.State, run.Time.Local().Format("2006-01-02 15:04"), bytesize.Human(run.Bytes))
			for _, e := range run.Entries {
				fmt.Fprintf(w, "        %-18s %s  %s\n", e.Kind, e.Path, bytesize.Human(e.Bytes))
			}
		}
	}
	es := r.EtcdSpace
	if es == nil || len(es.Members) == 0 {
		return
	}
	fmt.Fprintln(w, "\netcd's own space:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tDB SIZE\tIN USE\tQUOTA\tOF QUOTA\tALARMS")
	for _, m := range es.Members {
		inUse, quota, pct := "-", "none", "-"
		if m.InUse > 0 {
			inUse = bytesize.Human(m.InUse)
		}
		if m.Quota > 0 {
			quota = bytesize.Human(m.Quota) + " (" + m.QuotaFrom + ")"
			pct = fmt.Sprintf("%.0f%%", m.UsedPercent())
		}
		alarms := strings.Join(m.Alarms, ",")
		if alarms == "" {
			alarms = "none"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", m.Host, bytesize.Human(m.DBSize), inUse, quota, pct, alarms)
	}
	tw.Flush()
	for _, hs := range r.Space {
		if hs.AlarmError != "" {
			fmt.Fprintf(w, "  %s: alarms not read: %s\n", hs.Host, oneLine(hs.AlarmError))
		}
	}
	if len(es.Verdict) == 0 {
		fmt.Fprintln(w, "  no alarm; every member well under its quota and not fragmented")
		return
	}
	for _, v := range es.Verdict {
		fmt.Fprintf(w, "  %s\n", v)
	}
	if len(es.Fix) > 0 {
		fmt.Fprintln(w, "  To fix it (status changes nothing; run these yourself):")
		for _, f := range es.Fix {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
}
