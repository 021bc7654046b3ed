package offsite

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Options override what the AWS environment and files say. Zero values
// leave the AWS resolution alone.
type Options struct {
	// Profile is a profile of ~/.aws/config and ~/.aws/credentials
	// (default: $AWS_PROFILE, else "default").
	Profile string
	// Region (default: $AWS_REGION, the profile's region, else us-east-1
	// when an endpoint is given).
	Region string
	// Endpoint is the S3-compatible server's URL (default:
	// $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, the profile's endpoint_url,
	// else AWS itself).
	Endpoint string
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY. It is always on
	// when an endpoint is set (S3-compatible stores rarely have wildcard
	// DNS), and off against AWS itself unless asked.
	PathStyle bool
	// PartSize is the multipart part size (default 16 MiB; it grows for
	// files so big that 10000 parts would not hold them).
	PartSize int64
	// Concurrency is how many parts are sent at once (default 3). Memory
	// is about PartSize × (Concurrency + 1).
	Concurrency int
	// HTTPClient replaces the SDK's HTTP client (tests).
	HTTPClient *http.Client
}

// Store is one bucket of an S3-compatible object store.
type Store struct {
	Bucket   string
	Endpoint string // as resolved, for messages
	Region   string
	client   *s3.Client
	partSize int64
	conc     int
}

const (
	defaultPartSize = 16 << 20
	minPartSize     = 5 << 20 // S3's floor for every part but the last
	maxParts        = 10000
)

// Open resolves credentials, region and endpoint the AWS way and returns the
// store of bucket. It does not contact the store (see Check).
func Open(ctx context.Context, bucket string, o Options) (*Store, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	var lo []func(*config.LoadOptions) error
	if o.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if o.Endpoint != "" {
		lo = append(lo, config.WithBaseEndpoint(o.Endpoint))
	}
	if o.HTTPClient != nil {
		lo = append(lo, config.WithHTTPClient(o.HTTPClient))
	}
	// Integrity is proven by reading every upload back (see Put), so the
	// SDK's flexible checksums are only sent where S3 requires them: several
	// S3-compatible stores reject the aws-chunked trailers they need.
	lo = append(lo,
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	)
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("s3://%s: reading the AWS configuration: %w", bucket, err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		// BaseEndpoint here already holds AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL
		// or the profile's endpoint_url when one is set.
		if so.BaseEndpoint != nil && *so.BaseEndpoint != "" {
			so.UsePathStyle = true
			if so.Region == "" {
				so.Region = "us-east-1" // S3-compatible stores ignore it, SigV4 needs one
			}
		}
		if o.PathStyle {
			so.UsePathStyle = true
		}
	})
	opts := client.Options()
	s := &Store{
		Bucket:   bucket,
		Region:   opts.Region,
		client:   client,
		partSize: o.PartSize,
		conc:     o.Concurrency,
	}
	if opts.BaseEndpoint != nil && *opts.BaseEndpoint != "" {
		s.Endpoint = strings.TrimRight(*opts.BaseEndpoint, "/")
	} else {
		if s.Region == "" {
			return nil, fmt.Errorf("s3://%s: no region: set AWS_REGION, region in the profile of ~/.aws/config, or AWS_ENDPOINT_URL for an S3-compatible store", bucket)
		}
		s.Endpoint = "https://s3." + s.Region + ".amazonaws.com"
	}
	if s.partSize <= 0 {
		s.partSize = defaultPartSize
	}
	if s.partSize < minPartSize {
		s.partSize = minPartSize
	}
	if s.conc <= 0 {
		s.conc = 3
	}
	return s, nil
}

// OpenURL opens the store of a parsed location.
func OpenURL(ctx context.Context, loc Location, o Options) (*Store, error) {
	return Open(ctx, loc.Bucket, o)
}

// Check asks the store whether the bucket exists and these credentials may
// use it, so a backup learns it cannot go offsite before taking a snapshot.
func (s *Store) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.Bucket})
	return s.wrap("check", "", err)
}

// Object is one stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
	// SHA256 is the hex sha256 of the stored bytes, when this package
	// computed it (Put, Get); empty from List and Head.
	SHA256 string
}

// Head returns the size and time of key.
func (s *Store) Head(ctx context.Context, key string) (Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return Object{}, s.wrap("head", key, err)
	}
	return Object{Key: key, Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
}

// Delete removes key. Removing a key that is not there is not an error
// (S3 says so too).
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: &key})
	return s.wrap("delete", key, err)
}

// URL is the s3:// URL of key in this store.
func (s *Store) URL(key string) string { return Scheme + s.Bucket + "/" + key }
