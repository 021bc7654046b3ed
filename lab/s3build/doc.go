// Package s3build is the module in which the tests build versitygw, an
// S3-compatible server with a posix backend, from the Go module proxy:
// `go build github.com/versity/versitygw/cmd/versitygw` here, pinned by the
// tool directive of go.mod and every checksum of go.sum, so the server's
// dependencies never enter ezrestore's own module. internal/testkit/s3test runs
// the build once and caches the binary under /var/cache/ezrestore/s3.
package s3build
