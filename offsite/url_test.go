package offsite

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Location
		str  string
	}{
		{"s3://backups", Location{Bucket: "backups"}, "s3://backups"},
		{"s3://backups/", Location{Bucket: "backups"}, "s3://backups"},
		{"s3://backups/prod/k8s", Location{Bucket: "backups", Prefix: "prod/k8s"}, ""},
		{"s3://backups/prod/k8s/", Location{Bucket: "backups", Prefix: "prod/k8s"}, "s3://backups/prod/k8s"},
		{"s3://backups/prod/snapshot_202401021530.db", Location{Bucket: "backups", Prefix: "prod", Name: "snapshot_202401021530.db"}, ""},
		{"s3://backups/prod/snapshot_202401021530.db.age", Location{Bucket: "backups", Prefix: "prod", Name: "snapshot_202401021530.db.age"}, ""},
		{"s3://backups/snapshot.db", Location{Bucket: "backups", Name: "snapshot.db"}, ""},
		{"s3://backups/prod/latest", Location{Bucket: "backups", Prefix: "prod", Name: "latest"}, ""},
		{"s3://backups/prod/before:2024-01-02T15:00", Location{Bucket: "backups", Prefix: "prod", Name: "before:2024-01-02T15:00"}, ""},
		{"s3://my.bucket-1/a.db/", Location{Bucket: "my.bucket-1", Prefix: "a.db"}, "s3://my.bucket-1/a.db"},
	} {
		got, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.in, got, tc.want)
		}
		str := tc.str
		if str == "" {
			str = tc.in
		}
		if got.String() != str {
			t.Errorf("%s: String() = %s, want %s", tc.in, got.String(), str)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/var/backups/x.db", "not an s3://"},
		{"s3:/backups", "not an s3://"},
		{"s3://", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3://Backups/x", "lowercase"},
		{"s3://ab/x", "3 to 63"},
		{"s3://-bucket/x", "starting and ending"},
		{"s3://bucket_1/x", "lowercase"},
		{"s3://bucket/a//b", "'//'"},
		{"s3://bucket/a/../b", "'..'"},
		{"s3://bucket/a?versionId=1", "'?'"},
	} {
		_, err := ParseURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error containing %q, got %v", tc.in, tc.want, err)
		}
	}
}

func TestLocationKey(t *testing.T) {
	if k := (Location{Bucket: "b", Prefix: "p/q"}).Key("x.db"); k != "p/q/x.db" {
		t.Fatal(k)
	}
	if k := (Location{Bucket: "b"}).Key("x.db"); k != "x.db" {
		t.Fatal(k)
	}
	if !IsURL("s3://b") || IsURL("/tmp/s3://b") {
		t.Fatal("IsURL")
	}
}
