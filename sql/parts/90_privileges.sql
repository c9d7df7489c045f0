/* ---------------------------------------------------------------------
 * Privileges: nothing for PUBLIC.  Each part revokes and grants the
 * privileges of its own objects (admin configures, operator runs, monitor
 * reads); this is the backstop for an object whose part forgot its REVOKE
 * (if the upgrade script forgot it too, test/t/150_upgrade.pl shows the
 * difference).
 * ---------------------------------------------------------------------
 */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA datasync FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA datasync FROM PUBLIC;
