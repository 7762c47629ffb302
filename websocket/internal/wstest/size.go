package wstest

import "strconv"

// SizeName names a sub-benchmark by a payload size: 16B, 4KiB, 16MiB.
func SizeName(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
