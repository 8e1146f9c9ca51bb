mod analyzer;
mod cvss;
mod feed;
mod matcher;
mod report;
mod scan;
mod versions;
