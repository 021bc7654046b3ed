package cmd

import "github.com/spf13/cobra"

func newBackupScheduleCmd(g *Globals) *cobra.Command { return &cobra.Command{Use: "schedule"} }
