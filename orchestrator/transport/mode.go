package transport

import "os"

func fileMode(m uint32) os.FileMode {
	if m == 0 {
		return 0o600
	}
	return os.FileMode(m)
}
