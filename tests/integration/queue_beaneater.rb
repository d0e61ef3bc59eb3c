# A real client against `ringlet queue`: Debian's ruby-beaneater through its common operations. Run by
# queue_server_test.cpp as `ruby queue_beaneater.rb HOST:PORT`; prints "beaneater: ok" or raises (exit 1).
require 'beaneater'

def check(what, cond)
  raise "beaneater: #{what}" unless cond
end

b = Beaneater.new(ARGV.fetch(0))
tube = b.tubes['emails']
r = tube.put('hello', pri: 5, ttr: 60)
check('put', r[:status] == 'INSERTED')
tube.put('urgent', pri: 1)
tube.put('later', delay: 100)
check('used', b.tubes.used.name == 'emails')
b.tubes.watch!('emails')
check('watched', b.tubes.watched.map(&:name) == ['emails'])
check('all', b.tubes.all.map(&:name).sort == %w[default emails])
check('peek ready', tube.peek(:ready).body == 'urgent')
check('peek delayed', tube.peek(:delayed).body == 'later')

job = b.tubes.reserve(1)
check('reserve by priority', job.body == 'urgent')
check('job stats', job.stats.state == 'reserved' && job.stats.pri == 1 && job.stats.tube == 'emails')
job.touch
job.release(pri: 2)
job = b.tubes.reserve(1)
check('release', job.body == 'urgent' && job.stats.releases == 1)
job.bury
check('peek buried', tube.peek(:buried).id == job.id)
tube.kick(10)
check('kicked', b.jobs.find(job.id).stats.state == 'ready')

job = b.tubes.reserve(1)
job.delete
check('deleted', b.jobs.find(job.id).nil?)
job = b.tubes.reserve(1)
check('fifo', job.body == 'hello')
job.delete

check('reserve timeout', begin
  b.tubes.reserve(0)
  false
rescue Beaneater::TimedOutError
  true
end)

stats = tube.stats
check('tube stats', stats.current_jobs_delayed == 1 && stats.name == 'emails')
tube.pause(1)
check('paused', tube.stats.pause == 1)
check('server stats', b.stats.current_jobs_delayed == 1 && b.stats.total_jobs == 3)

b.close
puts 'beaneater: ok'
