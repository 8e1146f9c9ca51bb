mod cvss;
mod versions;
