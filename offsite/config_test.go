package offsite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// awsEnv isolates a test from the machine's AWS settings: empty config and
// credentials files unless written, no instance metadata lookups.
func awsEnv(t *testing.T, config, credentials string) {
	t.Helper()
	dir := t.TempDir()
	cf, crf := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	os.WriteFile(cf, []byte(config), 0o600)
	os.WriteFile(crf, []byte(credentials), 0o600)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", cf)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", crf)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

const profiles = `[default]
region = eu-west-1

[profile lab]
region = ap-east-1
endpoint_url = http://127.0.0.1:7070
`

const creds = `[default]
aws_access_key_id = DEFAULTKEY
aws_secret_access_key = defaultsecret

[lab]
aws_access_key_id = LABKEY
aws_secret_access_key = labsecret
aws_session_token = labtoken
`

func TestResolveLikeAWS(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name               string
		env                map[string]string
		opt                Options
		endpoint, region   string
		key, secret, token string
		pathStyle          bool
	}{
		{
			name: "default profile, AWS itself", endpoint: "https://s3.eu-west-1.amazonaws.com", region: "eu-west-1",
			key: "DEFAULTKEY", secret: "defaultsecret",
		},
		{
			name:     "AWS_PROFILE picks region, endpoint and keys of a profile",
			env:      map[string]string{"AWS_PROFILE": "lab"},
			endpoint: "http://127.0.0.1:7070", region: "ap-east-1", key: "LABKEY", secret: "labsecret", token: "labtoken", pathStyle: true,
		},
		{
			name: "environment beats the files",
			env: map[string]string{"AWS_PROFILE": "lab", "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret",
				"AWS_SESSION_TOKEN": "envtoken", "AWS_REGION": "us-west-2", "AWS_ENDPOINT_URL": "http://127.0.0.1:9999/"},
			endpoint: "http://127.0.0.1:9999", region: "us-west-2", key: "ENVKEY", secret: "envsecret", token: "envtoken", pathStyle: true,
		},
		{
			name:     "the S3-specific endpoint beats the general one",
			env:      map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1111", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2222"},
			endpoint: "http://127.0.0.1:2222", region: "eu-west-1", key: "DEFAULTKEY", secret: "defaultsecret", pathStyle: true,
		},
		{
			name:     "options beat everything",
			env:      map[string]string{"AWS_PROFILE": "default", "AWS_ENDPOINT_URL": "http://127.0.0.1:1111"},
			opt:      Options{Profile: "lab", Region: "sa-east-1", Endpoint: "http://127.0.0.1:3333"},
			endpoint: "http://127.0.0.1:3333", region: "sa-east-1", key: "LABKEY", secret: "labsecret", token: "labtoken", pathStyle: true,
		},
		{
			name:     "path style against AWS when asked",
			opt:      Options{PathStyle: true},
			endpoint: "https://s3.eu-west-1.amazonaws.com", region: "eu-west-1", key: "DEFAULTKEY", secret: "defaultsecret", pathStyle: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			awsEnv(t, profiles, creds)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			s, err := Open(ctx, "backups", tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if s.Endpoint != tc.endpoint || s.Region != tc.region {
				t.Errorf("endpoint %s region %s, want %s %s", s.Endpoint, s.Region, tc.endpoint, tc.region)
			}
			if got := s.client.Options().UsePathStyle; got != tc.pathStyle {
				t.Errorf("path style %v, want %v", got, tc.pathStyle)
			}
			c, err := s.client.Options().Credentials.Retrieve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.AccessKeyID != tc.key || c.SecretAccessKey != tc.secret || c.SessionToken != tc.token {
				t.Errorf("credentials %s/%s/%s, want %s/%s/%s", c.AccessKeyID, c.SecretAccessKey, c.SessionToken, tc.key, tc.secret, tc.token)
			}
		})
	}
}

func TestResolveEndpointWithoutRegion(t *testing.T) {
	awsEnv(t, "", "")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:7070")
	s, err := Open(context.Background(), "backups", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Region != "us-east-1" || !s.client.Options().UsePathStyle {
		t.Fatalf("S3-compatible store without a region: got region %q path style %v", s.Region, s.client.Options().UsePathStyle)
	}
}

func TestResolveErrors(t *testing.T) {
	awsEnv(t, "", "")
	if _, err := Open(context.Background(), "backups", Options{}); err == nil || !strings.Contains(err.Error(), "no region") {
		t.Fatalf("no region anywhere: want a 'no region' error, got %v", err)
	}
	t.Setenv("AWS_PROFILE", "missing")
	if _, err := Open(context.Background(), "backups", Options{Region: "eu-west-1"}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("unknown profile: want an error naming it, got %v", err)
	}
	if _, err := Open(context.Background(), "Bad_Bucket", Options{Region: "eu-west-1"}); err == nil {
		t.Fatal("bad bucket name accepted")
	}
}

func TestPartSizeGrowsForHugeStreams(t *testing.T) {
	awsEnv(t, "", "")
	s, err := Open(context.Background(), "backups", Options{Region: "eu-west-1", PartSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.partSize != minPartSize {
		t.Fatalf("part size %d, want S3's floor %d", s.partSize, minPartSize)
	}
	if got := s.partSizeFor(200 << 30); got*(maxParts-500) < 200<<30 {
		t.Fatalf("part size %d cannot hold 200 GiB in %d parts", got, maxParts)
	}
	if got := s.partSizeFor(1 << 30); got != minPartSize {
		t.Fatalf("1 GiB: part size %d, want %d", got, minPartSize)
	}
}
