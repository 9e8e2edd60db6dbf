package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name, meminfo string
		want          int64 // MiB; 0: an error
	}{
		{"Pi with 2 GB", "MemTotal:        1891420 kB\nMemFree:          912000 kB\n", 115},
		{"Pi with 1 GB", "MemTotal:         944732 kB\n", 96},
		{"Pi with 8 GB", "MemFree: 1 kB\nMemTotal:        7998820 kB\n", 128},
		{"no MemTotal", "MemFree: 1 kB\n", 0},
		{"not a number", "MemTotal: lots kB\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := memoryLimit([]byte(tc.meminfo))
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("got %d MiB; want an error", got>>20)
				}
				return
			}
			if err != nil || got>>20 != tc.want {
				t.Fatalf("got %d MiB, %v; want %d MiB", got>>20, err, tc.want)
			}
		})
	}
}
