// Command ezrestore restores, backs up and inspects Kubernetes etcd clusters over SSH.
package main

import (
	"os"

	"github.com/ezrestore/ezrestore/cmd"
)

func main() {
	os.Exit(cmd.Execute())
}
