package swarm

// Record operations on one torrent, whatever its kind (table.go): inline
// and block torrents ("flat") keep IPv4 records then IPv6 records, each
// family sorted, in one byte range; big torrents keep two peerLists. All
// run under the shard's lock.

// famCounts are one torrent's seeders and leechers by family.
type famCounts struct{ s4, l4, s6, l6 uint32 }

func (c famCounts) counts(completed uint32) Counts {
	return Counts{Seeders: c.s4 + c.s6, Leechers: c.l4 + c.l6, Completed: completed}
}

func (sh *shard) famCounts(sl *slot) famCounts {
	if sl.kind() == kindBig {
		t := sh.big[sl.index()]
		return famCounts{t.v4.seeders, t.v4.leechers(), t.v6.seeders, t.v6.leechers()}
	}
	return famCounts{uint32(sl.s4), uint32(sl.n4 - sl.s4), uint32(sl.s6), uint32(sl.n6 - sl.s6)}
}

// account adds the change of one torrent's counts to the shard's totals.
func (sh *shard) account(before, after famCounts) {
	sh.addTotal(totSeeders4, before.s4, after.s4)
	sh.addTotal(totLeechers4, before.l4, after.l4)
	sh.addTotal(totSeeders6, before.s6, after.s6)
	sh.addTotal(totLeechers6, before.l6, after.l6)
}

func (sh *shard) addTotal(i int, before, after uint32) {
	if before != after {
		// Written under mu only: a load and a store, not a locked add.
		c := &sh.totals[i]
		c.Store(c.Load() + int64(after) - int64(before))
	}
}

// family returns the byte range of a flat torrent's records of length rl
// within its storage.
func (sl *slot) family(rl int) (lo, hi int) {
	n4 := int(sl.n4) * recLen4
	if rl == recLen4 {
		return 0, n4
	}
	return n4, n4 + int(sl.n6)*recLen6
}

func (t *torrent) list(rl int) *peerList {
	if rl == recLen4 {
		return &t.v4
	}
	return &t.v6
}

// findRec returns the record with key (length rl-2) and its place in its
// family's list (pick leaves it out by that), or nil.
func (sh *shard) findRec(sl *slot, key []byte, rl int) ([]byte, place) {
	var v []byte
	b := 0
	if sl.kind() == kindBig {
		var vp *[]byte
		vp, b = sh.big[sl.index()].list(rl).vec(key)
		v = *vp
	} else {
		lo, hi := sl.family(rl)
		v = sh.flat(sl, sl.used())[lo:hi]
	}
	i, found := search(v, key, rl)
	if !found {
		return nil, nowhere
	}
	return v[i*rl : (i+1)*rl], place{b, i}
}

// addRec inserts a record for key (not in the torrent) with no flags and
// age stamp 0, and returns it and its place. It may move the torrent's
// records.
func (sh *shard) addRec(sl *slot, key []byte, rl int) ([]byte, place) {
	used := sl.used()
	if sl.kind() != kindBig && used+rl > maxFlat {
		sh.toBig(sl)
	}
	if sl.kind() == kindBig {
		l := sh.big[sl.index()].list(rl)
		v, b := l.vec(key)
		i, _ := search(*v, key, rl)
		rec := insertAt(v, i, rl)
		copy(rec, key)
		rec[rl-2], rec[rl-1] = 0, 0
		l.total++
		if l.big == nil && l.total > bigThreshold {
			l.split(rl)
			v, b = l.vec(key)
			i, _ = search(*v, key, rl)
			rec = (*v)[i*rl : (i+1)*rl]
		}
		return rec, place{b, i}
	}
	sh.growFlat(sl, used, used+rl)
	buf := sh.flat(sl, used+rl)
	lo, hi := sl.family(rl)
	i, _ := search(buf[lo:hi], key, rl)
	pos := lo + i*rl
	copy(buf[pos+rl:used+rl], buf[pos:used])
	rec := buf[pos : pos+rl]
	copy(rec, key)
	rec[rl-2], rec[rl-1] = 0, 0
	if rl == recLen4 {
		sl.n4++
	} else {
		sl.n6++
	}
	return rec, place{0, i}
}

// delRec removes the record with key if the torrent has it.
func (sh *shard) delRec(sl *slot, key []byte, rl int) bool {
	if sl.kind() == kindBig {
		l := sh.big[sl.index()].list(rl)
		v, _ := l.vec(key)
		i, found := search(*v, key, rl)
		if !found {
			return false
		}
		if (*v)[i*rl+rl-2]&flagSeeder != 0 {
			l.seeders--
		}
		l.total--
		removeAt(v, i, rl)
		if l.big != nil && l.total < smallThreshold {
			l.merge(rl)
		}
		sh.maybeFlat(sl)
		return true
	}
	used := sl.used()
	buf := sh.flat(sl, used)
	lo, hi := sl.family(rl)
	i, found := search(buf[lo:hi], key, rl)
	if !found {
		return false
	}
	pos := lo + i*rl
	seeder := buf[pos+rl-2]&flagSeeder != 0
	copy(buf[pos:used-rl], buf[pos+rl:used])
	if rl == recLen4 {
		sl.n4--
		if seeder {
			sl.s4--
		}
	} else {
		sl.n6--
		if seeder {
			sl.s6--
		}
	}
	sh.shrinkFlat(sl, used)
	return true
}

// addSeeder changes the seeders of the family of record length rl by d.
func (sh *shard) addSeeder(sl *slot, rl int, d int) {
	switch {
	case sl.kind() == kindBig:
		l := sh.big[sl.index()].list(rl)
		l.seeders = uint32(int(l.seeders) + d)
	case rl == recLen4:
		sl.s4 = uint16(int(sl.s4) + d)
	default:
		sl.s6 = uint16(int(sl.s6) + d)
	}
}

// toBig moves a flat torrent's records into a new big torrent.
func (sh *shard) toBig(sl *slot) {
	used := sl.used()
	buf := sh.flat(sl, used)
	n4 := int(sl.n4) * recLen4
	t := &torrent{
		v4: listOf(buf[:n4], sl.n4, sl.s4, recLen4),
		v6: listOf(buf[n4:used], sl.n6, sl.s6, recLen6),
	}
	sh.dropFlat(sl)
	i := len(sh.big)
	if n := len(sh.free); n > 0 {
		i, sh.free = sh.free[n-1], sh.free[:n-1]
		sh.big[i] = t
	} else {
		sh.big = append(sh.big, t)
	}
	sl.setRef(kindBig, i)
	sl.n4, sl.n6, sl.s4, sl.s6 = 0, 0, 0, 0
}

// listOf copies sorted records into a new peer list.
func listOf(recs []byte, total, seeders uint16, rl int) peerList {
	l := peerList{total: uint32(total), seeders: uint32(seeders)}
	if len(recs) > 0 {
		l.recs = make([]byte, len(recs), (len(recs)+len(recs)/4+15)&^15)
		copy(l.recs, recs)
	}
	if l.total > bigThreshold {
		l.split(rl)
	}
	return l
}

// maybeFlat moves a big torrent back to flat storage once its records fit
// in a quarter of maxFlat.
func (sh *shard) maybeFlat(sl *slot) {
	idx := sl.index()
	t := sh.big[idx]
	if int(t.v4.total)*recLen4+int(t.v6.total)*recLen6 > maxFlat/4 {
		return
	}
	if t.v4.big != nil {
		t.v4.merge(recLen4)
	}
	if t.v6.big != nil {
		t.v6.merge(recLen6)
	}
	n4, n6 := len(t.v4.recs), len(t.v6.recs)
	used := n4 + n6
	if n6 == 0 && used <= inlineLen {
		copy(sl.inline[:], t.v4.recs)
		sl.setRef(kindInline, 0)
	} else {
		off := sh.alloc(classSize(used)) // sl is still big: a rebuild skips it
		b := sh.arena.mem.b[off:]
		copy(b, t.v4.recs)
		copy(b[n4:], t.v6.recs)
		sl.setRef(kindBlock, off/blockAlign)
	}
	sl.n4, sl.n6 = uint16(t.v4.total), uint16(t.v6.total)
	sl.s4, sl.s6 = uint16(t.v4.seeders), uint16(t.v6.seeders)
	sh.big[idx] = nil
	sh.free = append(sh.free, idx)
}

// dropBig frees a big torrent's index when its slot goes away.
func (sh *shard) dropBig(sl *slot) {
	if sl.kind() == kindBig {
		sh.big[sl.index()] = nil
		sh.free = append(sh.free, sl.index())
	}
}

// pick is torrent.pick for any kind.
func (sh *shard) pick(sl *slot, dst *Peers, numwant int, want Family, self place, rl int) {
	if sl.kind() == kindBig {
		sh.big[sl.index()].pick(dst, numwant, want, self, rl)
		return
	}
	used := sl.used()
	buf := sh.flat(sl, used)
	n4 := int(sl.n4) * recLen4
	t := torrent{
		v4: peerList{recs: buf[:n4], total: uint32(sl.n4), seeders: uint32(sl.s4)},
		v6: peerList{recs: buf[n4:used], total: uint32(sl.n6), seeders: uint32(sl.s6)},
	}
	t.pick(dst, numwant, want, self, rl)
}

// filterFlat removes the records of a flat torrent that keep refuses, and
// returns how many.
func (sh *shard) filterFlat(sl *slot, keep func(r []byte) bool) int {
	used := sl.used()
	buf := sh.flat(sl, used)
	out := 0
	var n [2]uint16
	var seeders [2]uint16
	for f, rl := range [2]int{recLen4, recLen6} {
		lo, hi := sl.family(rl)
		for off := lo; off < hi; off += rl {
			r := buf[off : off+rl]
			if !keep(r) {
				continue
			}
			if r[rl-2]&flagSeeder != 0 {
				seeders[f]++
			}
			n[f]++
			copy(buf[out:out+rl], r)
			out += rl
		}
	}
	removed := int(sl.n4) + int(sl.n6) - int(n[0]) - int(n[1])
	if removed > 0 {
		sl.n4, sl.n6, sl.s4, sl.s6 = n[0], n[1], seeders[0], seeders[1]
		sh.shrinkFlat(sl, used)
	}
	return removed
}
