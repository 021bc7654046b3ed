package snapshot

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Retention is a policy by tiers, read as restic's `forget` reads its
// --keep-* options: for each tier with a count N, the newest snapshot of each
// of the N most recent distinct periods (hours, days, ISO weeks, months,
// years) that hold a snapshot is kept. Periods without a snapshot do not
// count: keep-daily 7 over backups taken every other day reaches two weeks
// back. When a tier still has counts left at the oldest snapshot, that one is
// kept too, so the history reaches as far back as the counts allow (restic
// 0.17 and later). A count of -1 keeps every period. A policy of all zeros
// keeps everything.
//
// Periods are taken in the location of each time, so callers pass local
// times: a daily backup at 00:30 belongs to the day the operator sees.
type Retention struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
}

// Empty reports whether the policy sets no tier.
func (p Retention) Empty() bool { return p == Retention{} }

// Validate rejects counts below -1.
func (p Retention) Validate() error {
	for _, t := range p.tiers() {
		if t.count < -1 {
			return fmt.Errorf("--keep-%s %d: a count is 0 or more, or -1 for all", t.flag, t.count)
		}
	}
	return nil
}

// String shows the policy as the flags that set it.
func (p Retention) String() string {
	var s []string
	for _, t := range p.tiers() {
		if t.count != 0 {
			s = append(s, fmt.Sprintf("--keep-%s %d", t.flag, t.count))
		}
	}
	if len(s) == 0 {
		return "no retention policy"
	}
	return strings.Join(s, " ")
}

type tier struct {
	flag   string // the flag's name after --keep-
	reason string // why a survivor is kept, as restic says it
	count  int
	period func(t time.Time, index int) int
}

func (p Retention) tiers() []tier {
	return []tier{
		{"last", "last snapshot", p.Last, func(_ time.Time, i int) int { return i }},
		{"hourly", "hourly snapshot", p.Hourly, func(t time.Time, _ int) int {
			return t.Year()*1_000_000 + int(t.Month())*10_000 + t.Day()*100 + t.Hour()
		}},
		{"daily", "daily snapshot", p.Daily, func(t time.Time, _ int) int {
			return t.Year()*10_000 + int(t.Month())*100 + t.Day()
		}},
		{"weekly", "weekly snapshot", p.Weekly, func(t time.Time, _ int) int {
			y, w := t.ISOWeek()
			return y*100 + w
		}},
		{"monthly", "monthly snapshot", p.Monthly, func(t time.Time, _ int) int {
			return t.Year()*100 + int(t.Month())
		}},
		{"yearly", "yearly snapshot", p.Yearly, func(t time.Time, _ int) int { return t.Year() }},
	}
}

// RetentionItem is one snapshot a policy is applied to.
type RetentionItem struct {
	Name string
	Time time.Time
	// Protected, when not empty, says why the snapshot must never be removed
	// (for instance "copied by snapshot.db"); it is kept with that reason.
	Protected string
}

// RetentionDecision is what a policy decided for one snapshot.
type RetentionDecision struct {
	RetentionItem
	Keep bool
	// Reasons say which tiers (or protections) keep the snapshot; empty
	// when it goes.
	Reasons []string
}

// Reason joins the reasons for display, "" when the snapshot goes.
func (d RetentionDecision) Reason() string { return strings.Join(d.Reasons, ", ") }

// Reasons given beside the tiers'.
const (
	ReasonNewest   = "newest snapshot"
	ReasonNoPolicy = "no retention policy"
)

// Apply decides, for every item, whether p keeps it and why. The result is
// sorted newest first (ties by name, descending). The newest snapshot and
// protected ones are always kept.
func (p Retention) Apply(items []RetentionItem) []RetentionDecision {
	out := make([]RetentionDecision, len(items))
	for i, it := range items {
		out[i].RetentionItem = it
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name > out[j].Name
	})
	if p.Empty() {
		for i := range out {
			out[i].Keep, out[i].Reasons = true, []string{ReasonNoPolicy}
		}
		return out
	}
	type state struct {
		left    int
		last    int
		started bool
	}
	tiers := p.tiers()
	st := make([]state, len(tiers))
	for i, t := range tiers {
		st[i].left = t.count
	}
	for n := range out {
		d := &out[n]
		oldest := n == len(out)-1
		for i, t := range tiers {
			if st[i].left == 0 {
				continue
			}
			v := t.period(d.Time, n)
			switch {
			case !st[i].started || v != st[i].last:
				d.Reasons = append(d.Reasons, t.reason)
			case oldest:
				// Counts are left and nothing older exists: keep the oldest
				// so the tier's history reaches as far back as it can.
				d.Reasons = append(d.Reasons, "oldest "+t.reason)
			default:
				continue
			}
			st[i].started, st[i].last = true, v
			if st[i].left > 0 {
				st[i].left--
			}
		}
		if n == 0 && len(d.Reasons) == 0 {
			d.Reasons = append(d.Reasons, ReasonNewest)
		}
		if d.Protected != "" {
			d.Reasons = append(d.Reasons, d.Protected)
		}
		d.Keep = len(d.Reasons) > 0
	}
	return out
}
