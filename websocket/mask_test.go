package websocket

import (
	"bytes"
	"testing"
)

func maskNaive(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
}

func TestMaskMatchesNaive(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := 0; n < 40; n++ {
		for pos := 0; pos < 4; pos++ {
			want := make([]byte, n)
			for i := range want {
				want[i] = byte(i * 7)
			}
			got := bytes.Clone(want)
			maskNaive(key, pos, want)
			if next := mask(key, pos, got); next != (pos+n)%4 {
				t.Errorf("n=%d pos=%d: next position %d", n, pos, next)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("n=%d pos=%d: % x, want % x", n, pos, got, want)
			}
		}
	}
}

// BenchmarkMask measures unmasking against a memmove of the same size in
// the same run: the physical reference of a pass over the bytes.
func BenchmarkMask(b *testing.B) {
	for _, size := range []int{16, 1024, 65536} {
		buf, dst := make([]byte, size), make([]byte, size)
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				mask([4]byte{1, 2, 3, 4}, 1, buf)
			}
		})
		b.Run(sizeName(size)+"-memmove", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(dst, buf)
			}
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	return string(appendInt(nil, n))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}
