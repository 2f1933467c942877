"""Images: the store under the data root, and the importers that fill it.

    store.py      ImageStore: list, get, rootfs, remove, import_tar, import_dir, ensure_busybox
    busybox.py    a minimal rootfs from the host's static busybox
    tarimport.py  tarballs (plain, gzip, xz, bzip2, zstd) extracted member by member
    oci.py        OCI image layouts and `docker save` archives: layers, whiteouts, config
    dirimport.py  copying a directory tree as a rootfs
    safefs.py     writing under a root through directory fds, never following a symlink

Only `store` is on a box's start-up path (`run --image`); it imports the others when an import
is asked for, so tarfile, hashlib and subprocess stay off that path.
"""
