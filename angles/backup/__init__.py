"""Backups and restores: the file format (:mod:`~angles.backup.format`) with exact numbers
(:mod:`~angles.backup.numbers`), the backup engine (:mod:`~angles.backup.engine`), the
diff (:mod:`~angles.backup.diff`), the restore (:mod:`~angles.backup.restore`), retention
and the inventory behind ``angles backups``.

Nothing is imported here, so that a plugin reading one helper loads one module.
"""
