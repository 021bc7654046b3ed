// Package deps pins the project's dependencies while the packages that use them are being written.
// Remove it once every import below is used by real code.
package deps

import (
	_ "github.com/hashicorp/go-multierror"
	_ "github.com/kevinburke/ssh_config"
	_ "github.com/pkg/sftp"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "go.etcd.io/etcd/api/v3/mvccpb"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/crypto/ssh/agent"
	_ "golang.org/x/crypto/ssh/knownhosts"
	_ "golang.org/x/term"
	_ "gopkg.in/yaml.v3"
)
