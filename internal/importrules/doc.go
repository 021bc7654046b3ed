// Package importrules holds the test that keeps the import rules the
// packages' docs state: which project package may import which. The picture
// drawn by the folder names (cmd -> commands -> actions -> engine ->
// transport -> hosts) cannot drift without this test failing.
package importrules
