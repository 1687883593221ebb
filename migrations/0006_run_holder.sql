-- Which process runs a run: the name of the presence file that process holds locked beside the
-- database (`<db>.live/<holder>`). A run left `running` whose holder no longer holds its file
-- was cut short (killed, crashed, restarted) and is marked `interrupted`.
ALTER TABLE runs ADD COLUMN holder TEXT;
