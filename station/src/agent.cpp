// Written with the station issue; see the header beside it.
