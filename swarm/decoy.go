package swarm

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// addDecoys appends n random plausible peers of record size pl (PeerLen4 or
// PeerLen6) to dst and shuffles each into a random place among the last
// peers, so position gives nothing away.
func addDecoys(dst []byte, n, pl int) []byte {
	for range n {
		var rec [PeerLen6]byte
		for {
			binary.BigEndian.PutUint64(rec[0:], rand.Uint64())
			binary.BigEndian.PutUint64(rec[8:], rand.Uint64())
			if pl == PeerLen6 {
				rec[0] = 0x20 | rec[0]&0x1f // 2000::/3, global unicast
			}
			if publicUnicast(rec[:pl-2]) {
				break
			}
		}
		binary.BigEndian.PutUint16(rec[pl-2:], uint16(1024+rand.IntN(65536-1024)))
		dst = append(dst, rec[:pl]...)
		count := len(dst) / pl
		j := rand.IntN(count)
		last := dst[(count-1)*pl:]
		other := dst[j*pl : (j+1)*pl]
		var tmp [PeerLen6]byte
		copy(tmp[:pl], other)
		copy(other, last)
		copy(last, tmp[:pl])
	}
	return dst
}

// publicUnicast reports whether ip could be a peer on the Internet: not
// private, loopback, link-local, multicast, documentation or reserved.
func publicUnicast(ip []byte) bool {
	var a netip.Addr
	if len(ip) == 4 {
		a = netip.AddrFrom4([4]byte(ip))
		if ip[0] == 0 || ip[0] >= 224 || ip[0] == 100 && ip[1]&0xc0 == 64 || // 0/8, multicast and 240/4, CGNAT
			ip[0] == 192 && ip[1] == 0 || ip[0] == 198 && ip[1]&0xfe == 18 || // 192.0.0/24 and 192.0.2/24, benchmarking
			ip[0] == 198 && ip[1] == 51 && ip[2] == 100 || ip[0] == 203 && ip[1] == 0 && ip[2] == 113 {
			return false
		}
	} else {
		a = netip.AddrFrom16([16]byte(ip))
		if ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0x0d && ip[3] == 0xb8 { // documentation
			return false
		}
	}
	return a.IsGlobalUnicast() && !a.IsPrivate()
}
