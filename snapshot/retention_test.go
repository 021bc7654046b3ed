package snapshot

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// retAt parses "2024-03-05 14:30" in UTC.
func retAt(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func items(t *testing.T, times ...string) []RetentionItem {
	var out []RetentionItem
	for _, s := range times {
		out = append(out, RetentionItem{Name: s, Time: retAt(t, s)})
	}
	return out
}

// kept maps the name of each survivor to its reasons.
func kept(ds []RetentionDecision) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		if d.Keep {
			m[d.Name] = d.Reason()
		} else if len(d.Reasons) != 0 {
			m[d.Name] = "REMOVED WITH REASONS " + d.Reason()
		}
	}
	return m
}

func TestRetentionTiers(t *testing.T) {
	// Every 6 hours over four days, newest 2024-03-04 18:00.
	sixHourly := []string{
		"2024-03-01 00:00", "2024-03-01 06:00", "2024-03-01 12:00", "2024-03-01 18:00",
		"2024-03-02 00:00", "2024-03-02 06:00", "2024-03-02 12:00", "2024-03-02 18:00",
		"2024-03-03 00:00", "2024-03-03 06:00", "2024-03-03 12:00", "2024-03-03 18:00",
		"2024-03-04 00:00", "2024-03-04 06:00", "2024-03-04 12:00", "2024-03-04 18:00",
	}
	for _, tc := range []struct {
		name  string
		times []string
		p     Retention
		want  map[string]string
	}{
		{
			name:  "keep-last takes the newest N",
			times: sixHourly,
			p:     Retention{Last: 3},
			want: map[string]string{
				"2024-03-04 18:00": "last snapshot",
				"2024-03-04 12:00": "last snapshot",
				"2024-03-04 06:00": "last snapshot",
			},
		},
		{
			name:  "keep-daily takes the newest of each of the last N days",
			times: sixHourly,
			p:     Retention{Daily: 2},
			want: map[string]string{
				"2024-03-04 18:00": "daily snapshot",
				"2024-03-03 18:00": "daily snapshot",
			},
		},
		{
			name:  "counts left at the oldest keep the oldest too",
			times: sixHourly,
			p:     Retention{Daily: 10},
			want: map[string]string{
				"2024-03-04 18:00": "daily snapshot",
				"2024-03-03 18:00": "daily snapshot",
				"2024-03-02 18:00": "daily snapshot",
				"2024-03-01 18:00": "daily snapshot",
				"2024-03-01 00:00": "oldest daily snapshot",
			},
		},
		{
			name:  "a count used up exactly at the oldest period does not add the oldest",
			times: sixHourly,
			p:     Retention{Daily: 4},
			want: map[string]string{
				"2024-03-04 18:00": "daily snapshot",
				"2024-03-03 18:00": "daily snapshot",
				"2024-03-02 18:00": "daily snapshot",
				"2024-03-01 18:00": "daily snapshot",
			},
		},
		{
			name:  "tiers overlap and each survivor lists every tier keeping it",
			times: sixHourly,
			p:     Retention{Last: 2, Hourly: 3, Daily: 2},
			want: map[string]string{
				"2024-03-04 18:00": "last snapshot, hourly snapshot, daily snapshot",
				"2024-03-04 12:00": "last snapshot, hourly snapshot",
				"2024-03-04 06:00": "hourly snapshot",
				"2024-03-03 18:00": "daily snapshot",
			},
		},
		{
			name: "periods without a snapshot do not count",
			times: []string{
				"2024-03-01 10:00", "2024-03-04 10:00", "2024-03-08 10:00", "2024-03-09 09:00", "2024-03-09 10:00",
			},
			p: Retention{Daily: 3},
			want: map[string]string{
				"2024-03-09 10:00": "daily snapshot",
				"2024-03-08 10:00": "daily snapshot",
				"2024-03-04 10:00": "daily snapshot",
			},
		},
		{
			name: "weeks are ISO weeks across the new year",
			// 2020-12-28 (Mon) to 2021-01-03 (Sun) is ISO week 53 of 2020;
			// 2021-01-04 (Mon) starts week 1 of 2021.
			times: []string{
				"2020-12-21 12:00", "2020-12-27 12:00", "2020-12-28 12:00", "2020-12-31 12:00",
				"2021-01-03 12:00", "2021-01-04 12:00", "2021-01-05 12:00",
			},
			p: Retention{Weekly: 3},
			want: map[string]string{
				"2021-01-05 12:00": "weekly snapshot",
				"2021-01-03 12:00": "weekly snapshot",
				"2020-12-27 12:00": "weekly snapshot",
			},
		},
		{
			name: "monthly and yearly",
			times: []string{
				"2022-06-01 00:00", "2022-12-31 23:00", "2023-01-15 00:00", "2023-11-30 00:00",
				"2023-12-01 00:00", "2023-12-20 00:00", "2024-01-02 00:00",
			},
			p: Retention{Monthly: 3, Yearly: 2},
			want: map[string]string{
				"2024-01-02 00:00": "monthly snapshot, yearly snapshot",
				"2023-12-20 00:00": "monthly snapshot, yearly snapshot",
				"2023-11-30 00:00": "monthly snapshot",
			},
		},
		{
			name:  "-1 keeps one in every period",
			times: sixHourly,
			p:     Retention{Daily: -1},
			want: map[string]string{
				"2024-03-04 18:00": "daily snapshot",
				"2024-03-03 18:00": "daily snapshot",
				"2024-03-02 18:00": "daily snapshot",
				"2024-03-01 18:00": "daily snapshot",
				"2024-03-01 00:00": "oldest daily snapshot",
			},
		},
		{
			name:  "hourly with two backups in one hour",
			times: []string{"2024-03-01 10:05", "2024-03-01 10:35", "2024-03-01 11:05", "2024-03-01 11:35"},
			p:     Retention{Hourly: 2},
			want: map[string]string{
				"2024-03-01 11:35": "hourly snapshot",
				"2024-03-01 10:35": "hourly snapshot",
			},
		},
		{
			name:  "the issue's 3-2-1 lesson: hot 7 days, cold 30 days (4 weekly), archives by month",
			times: everyDay("2024-01-01", 90),
			p:     Retention{Daily: 7, Weekly: 4, Monthly: 12},
			want: map[string]string{
				// 2024-03-30 is a Saturday in ISO week 13.
				"2024-03-30 02:00": "daily snapshot, weekly snapshot, monthly snapshot",
				"2024-03-29 02:00": "daily snapshot",
				"2024-03-28 02:00": "daily snapshot",
				"2024-03-27 02:00": "daily snapshot",
				"2024-03-26 02:00": "daily snapshot",
				"2024-03-25 02:00": "daily snapshot",
				"2024-03-24 02:00": "daily snapshot, weekly snapshot", // Sunday ends week 12
				"2024-03-17 02:00": "weekly snapshot",
				"2024-03-10 02:00": "weekly snapshot",
				"2024-02-29 02:00": "monthly snapshot",
				"2024-01-31 02:00": "monthly snapshot",
				"2024-01-01 02:00": "oldest monthly snapshot",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := kept(tc.p.Apply(items(t, tc.times...)))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s kept:\n%s\nwant:\n%s", tc.p, showKept(got), showKept(tc.want))
			}
		})
	}
}

func everyDay(from string, n int) []string {
	t0, _ := time.Parse("2006-01-02", from)
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, t0.AddDate(0, 0, i).Add(2*time.Hour).Format("2006-01-02 15:04"))
	}
	return out
}

func showKept(m map[string]string) string {
	var b strings.Builder
	for _, d := range sortedKeysDesc(m) {
		b.WriteString("  " + d + ": " + m[d] + "\n")
	}
	return b.String()
}

func sortedKeysDesc(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] > ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func TestRetentionProtectedAndNewest(t *testing.T) {
	its := items(t, "2024-03-01 00:00", "2024-03-02 00:00", "2024-03-03 00:00", "2024-03-04 00:00")
	its[0].Protected = "copied by snapshot.db"
	got := kept(Retention{Last: 1}.Apply(its))
	want := map[string]string{
		"2024-03-04 00:00": "last snapshot",
		"2024-03-01 00:00": "copied by snapshot.db",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A protected snapshot is counted by tiers like any other: here it is
	// the oldest and yearly keeps it anyway, with both reasons.
	got = kept(Retention{Yearly: 5}.Apply(its))
	if got["2024-03-01 00:00"] != "oldest yearly snapshot, copied by snapshot.db" {
		t.Fatalf("protected oldest: got %q", got["2024-03-01 00:00"])
	}
	// Only tiers of zero are no policy; the newest survives whatever tier is set.
	for _, p := range []Retention{{Yearly: 1}, {Hourly: 1}, {Last: 1}} {
		ds := p.Apply(its)
		if !ds[0].Keep || ds[0].Name != "2024-03-04 00:00" {
			t.Fatalf("%s dropped the newest: %+v", p, ds[0])
		}
	}
}

func TestRetentionEmptyPolicyKeepsAll(t *testing.T) {
	ds := Retention{}.Apply(items(t, "2024-03-01 00:00", "2024-03-02 00:00"))
	for _, d := range ds {
		if !d.Keep || d.Reason() != ReasonNoPolicy {
			t.Fatalf("empty policy: %+v", d)
		}
	}
	if len(Retention{}.Apply(nil)) != 0 {
		t.Fatal("nothing in, something out")
	}
}

func TestRetentionOrderAndTies(t *testing.T) {
	// Unsorted input; two backups in the same second are told apart by name.
	its := []RetentionItem{
		{Name: "snapshot_202403021000.db", Time: retAt(t, "2024-03-02 10:00")},
		{Name: "snapshot_202403041000.db", Time: retAt(t, "2024-03-04 10:00")},
		{Name: "snapshot_202403041000-2.db", Time: retAt(t, "2024-03-04 10:00")},
		{Name: "snapshot_202403031000.db", Time: retAt(t, "2024-03-03 10:00")},
	}
	ds := Retention{Last: 1, Daily: 2}.Apply(its)
	var order []string
	for _, d := range ds {
		order = append(order, d.Name)
	}
	wantOrder := []string{"snapshot_202403041000.db", "snapshot_202403041000-2.db", "snapshot_202403031000.db", "snapshot_202403021000.db"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Fatalf("order %v, want %v", order, wantOrder)
	}
	want := []bool{true, false, true, false}
	for i, d := range ds {
		if d.Keep != want[i] {
			t.Fatalf("%s: keep=%v reasons=%v, want keep=%v", d.Name, d.Keep, d.Reasons, want[i])
		}
	}
}

func TestRetentionLocalDays(t *testing.T) {
	// 23:30 UTC on the 1st is the 2nd in UTC+8: days follow the times' location.
	cst := time.FixedZone("CST", 8*3600)
	its := []RetentionItem{
		{Name: "a", Time: time.Date(2024, 3, 1, 23, 30, 0, 0, time.UTC).In(cst)},
		{Name: "b", Time: time.Date(2024, 3, 2, 1, 0, 0, 0, time.UTC).In(cst)},
	}
	ds := Retention{Daily: 1}.Apply(its)
	if !ds[0].Keep || ds[1].Keep {
		t.Fatalf("same local day: want only the newest kept, got %+v", ds)
	}
	its[0].Time, its[1].Time = its[0].Time.UTC(), its[1].Time.UTC()
	ds = Retention{Daily: 2}.Apply(its)
	if !ds[0].Keep || !ds[1].Keep {
		t.Fatalf("different UTC days: want both kept, got %+v", ds)
	}
}

func TestRetentionValidateAndString(t *testing.T) {
	if err := (Retention{Daily: -2}).Validate(); err == nil || !strings.Contains(err.Error(), "--keep-daily -2") {
		t.Fatalf("want error naming --keep-daily -2, got %v", err)
	}
	if err := (Retention{Daily: -1, Last: 3}).Validate(); err != nil {
		t.Fatal(err)
	}
	if s := (Retention{Last: 2, Weekly: 4}).String(); s != "--keep-last 2 --keep-weekly 4" {
		t.Fatalf("String: %q", s)
	}
}
