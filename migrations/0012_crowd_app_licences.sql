-- What each application that reads the served Crowd directory licenses (issue 21): the groups
-- whose members hold a licence in it (Bitbucket's groups with "Bitbucket User", Jira's
-- application-access groups) and the seats its licence allows. The licence guard counts each
-- application on its own and refuses a plan that takes any of them over its seats.
ALTER TABLE crowd_apps ADD COLUMN licensed_groups TEXT NOT NULL DEFAULT '[]';  -- JSON list
ALTER TABLE crowd_apps ADD COLUMN seats INTEGER;                              -- NULL: unlimited
