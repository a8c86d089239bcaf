-- table_trusted: 1 if the license's table was rebuilt in this Redis process, else 0.
-- KEYS[8] origin   (the others unused: every script gets all eleven)
return needs_rebuild(KEYS) and 0 or 1
